//! `get`, `put`, `del` and `cas`: the Kv service from the command line.

use std::io::Read;

use clap::{ArgGroup, Args};
use dbadger_proto::v1::compare_and_set_request::{Expected, New};
use dbadger_proto::v1::kv_client::KvClient;
use dbadger_proto::v1::{self, KeyValue};
use serde_json::json;

use super::endpoints::request;
use super::{ClientArgs, Effect, Endpoints, Exit, Failure, Output};

/// `get KEY`, `get --prefix PREFIX`, `get FROM TO --limit N`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The key; with TO, the first key of an inclusive range; with --prefix, the prefix.
    key: String,
    /// The last key of the range, inclusive.
    to: Option<String>,
    /// Every key that starts with KEY ("" for all keys).
    #[arg(long, conflicts_with = "to")]
    prefix: bool,
    /// At most this many entries of a range or prefix (0: no limit).
    #[arg(long, default_value_t = 0)]
    limit: u64,
    /// The flags every client command takes.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// `put KEY [VALUE]`: the value from the argument, or from stdin when absent or `-`.
#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// The key.
    key: String,
    /// The value; `-` or nothing reads it from stdin (raw bytes, also with --hex).
    value: Option<String>,
    /// The flags every client command takes.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// `del KEY`, `del --prefix PREFIX`, `del FROM TO`.
#[derive(Debug, Args)]
pub(crate) struct DelArgs {
    /// The key; with TO, the first key of an inclusive range; with --prefix, the prefix.
    key: String,
    /// The last key of the range, inclusive.
    to: Option<String>,
    /// Every key that starts with KEY.
    #[arg(long, conflicts_with = "to")]
    prefix: bool,
    /// The flags every client command takes.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// `cas KEY [NEW] --expect-value V | --expect-revision R | --expect-absent [--delete]`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("expect").required(true).args(["expect_value", "expect_revision", "expect_absent"])))]
pub(crate) struct CasArgs {
    /// The key.
    key: String,
    /// The new value (not with --delete).
    #[arg(required_unless_present = "delete", conflicts_with = "delete")]
    new: Option<String>,
    /// Change the key only if it holds this value.
    #[arg(long)]
    expect_value: Option<String>,
    /// Change the key only if its revision is this.
    #[arg(long)]
    expect_revision: Option<u64>,
    /// Change the key only if it does not exist.
    #[arg(long)]
    expect_absent: bool,
    /// Delete the key instead of setting a value.
    #[arg(long)]
    delete: bool,
    /// The flags every client command takes.
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

fn print_entries(output: &Output, entries: &[KeyValue], more: bool) {
    for entry in entries {
        output.entry(&entry.key, &entry.value, entry.revision);
    }
    if more {
        if output.is_json() {
            output.print(&[], json!({ "more": true }));
        } else {
            eprintln!("dbadger: more entries follow; the answer was cut short");
        }
    }
}

/// Runs `get`.
pub(crate) async fn get(
    args: GetArgs,
    endpoints: Endpoints,
    output: Output,
) -> Result<Exit, Failure> {
    let key = args.client.bytes(&args.key)?;
    let read_preference = args.client.read_preference();
    if args.prefix {
        let answer = endpoints
            .call(Effect::Read, |channel, within| {
                let message = v1::GetPrefixRequest {
                    prefix: key.clone(),
                    read_preference,
                };
                async move {
                    KvClient::new(channel)
                        .get_prefix(request(message, within))
                        .await
                }
            })
            .await?
            .into_inner();
        let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
        let cut = args.limit != 0 && answer.entries.len() > limit;
        let shown = if cut {
            &answer.entries[..limit]
        } else {
            &answer.entries[..]
        };
        print_entries(&output, shown, answer.more || cut);
        return Ok(Exit::Success);
    }
    if let Some(to) = &args.to {
        let max = args.client.bytes(to)?;
        let answer = endpoints
            .call(Effect::Read, |channel, within| {
                let message = v1::GetRangeRequest {
                    min: Some(key.clone()),
                    max: Some(max.clone()),
                    count: args.limit,
                    read_preference,
                };
                async move {
                    KvClient::new(channel)
                        .get_range(request(message, within))
                        .await
                }
            })
            .await?
            .into_inner();
        print_entries(&output, &answer.entries, answer.more);
        return Ok(Exit::Success);
    }
    let answer = endpoints
        .call(Effect::Read, |channel, within| {
            let message = v1::GetRequest {
                key: key.clone(),
                read_preference,
            };
            async move { KvClient::new(channel).get(request(message, within)).await }
        })
        .await?
        .into_inner();
    match answer.entry {
        Some(entry) => {
            print_entries(&output, &[entry], false);
            Ok(Exit::Success)
        }
        None => Err(Failure {
            exit: Exit::NotFound,
            message: format!("{}: key not found", output.show(&key)),
        }),
    }
}

fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut value = Vec::new();
    std::io::stdin()
        .read_to_end(&mut value)
        .map_err(|error| Failure::other(format!("cannot read the value from stdin: {error}")))?;
    Ok(value)
}

/// Runs `put`.
pub(crate) async fn put(
    args: PutArgs,
    endpoints: Endpoints,
    output: Output,
) -> Result<Exit, Failure> {
    let key = args.client.bytes(&args.key)?;
    let value = match args.value.as_deref() {
        None | Some("-") => read_stdin()?,
        Some(value) => args.client.bytes(value)?,
    };
    let answer = endpoints
        .call(Effect::Write, |channel, within| {
            let message = v1::SetRequest {
                key: key.clone(),
                value: value.clone(),
            };
            async move { KvClient::new(channel).set(request(message, within)).await }
        })
        .await?
        .into_inner();
    output.print(&["OK".to_owned()], json!({ "revision": answer.revision }));
    Ok(Exit::Success)
}

/// Runs `del`: prints how many keys it removed.
pub(crate) async fn del(
    args: DelArgs,
    endpoints: Endpoints,
    output: Output,
) -> Result<Exit, Failure> {
    let key = args.client.bytes(&args.key)?;
    let (revision, deleted) = if args.prefix {
        let answer = endpoints
            .call(Effect::Write, |channel, within| {
                let message = v1::DeletePrefixRequest {
                    prefix: key.clone(),
                };
                async move {
                    KvClient::new(channel)
                        .delete_prefix(request(message, within))
                        .await
                }
            })
            .await?
            .into_inner();
        (answer.revision, answer.deleted)
    } else if let Some(to) = &args.to {
        let max = args.client.bytes(to)?;
        let answer = endpoints
            .call(Effect::Write, |channel, within| {
                let message = v1::DeleteRangeRequest {
                    min: Some(key.clone()),
                    max: Some(max.clone()),
                };
                async move {
                    KvClient::new(channel)
                        .delete_range(request(message, within))
                        .await
                }
            })
            .await?
            .into_inner();
        (answer.revision, answer.deleted)
    } else {
        let answer = endpoints
            .call(Effect::Write, |channel, within| {
                let message = v1::DeleteRequest { key: key.clone() };
                async move {
                    KvClient::new(channel)
                        .delete(request(message, within))
                        .await
                }
            })
            .await?
            .into_inner();
        (answer.revision, answer.deleted)
    };
    output.print(
        &[deleted.to_string()],
        json!({ "deleted": deleted, "revision": revision }),
    );
    Ok(Exit::Success)
}

/// Runs `cas`: exit 4 when the condition did not hold.
pub(crate) async fn cas(
    args: CasArgs,
    endpoints: Endpoints,
    output: Output,
) -> Result<Exit, Failure> {
    let key = args.client.bytes(&args.key)?;
    let expected = match (&args.expect_value, args.expect_revision) {
        (Some(value), _) => Expected::ExpectedValue(args.client.bytes(value)?),
        (None, Some(revision)) => Expected::ExpectedRevision(revision),
        (None, None) => Expected::ExpectedAbsent(v1::Absent {}),
    };
    let new = match &args.new {
        Some(value) if !args.delete => New::NewValue(args.client.bytes(value)?),
        _ => New::Delete(v1::Absent {}),
    };
    let answer = endpoints
        .call(Effect::Write, |channel, within| {
            let message = v1::CompareAndSetRequest {
                key: key.clone(),
                expected: Some(expected.clone()),
                new: Some(new.clone()),
            };
            async move {
                KvClient::new(channel)
                    .compare_and_set(request(message, within))
                    .await
            }
        })
        .await?
        .into_inner();
    let mut text = vec![if answer.succeeded { "OK" } else { "FAILED" }.to_owned()];
    let current = answer.current.as_ref().map(|entry| {
        text.push(output.show(&entry.value));
        Output::entry_object(&entry.key, &entry.value, entry.revision)
    });
    output.print(
        &text,
        json!({ "succeeded": answer.succeeded, "revision": answer.revision, "current": current }),
    );
    Ok(if answer.succeeded {
        Exit::Success
    } else {
        Exit::CompareFailed
    })
}
