//! Client messages of the `dbadger.v1.Kv` service: requests to commands and queries, responses
//! to replies.

use dbadger_core::response::{KeyValue, Lookup};
use dbadger_core::{Command, Expected, NewValue, ReadPreference, RequestError, Response};
use dbadger_proto::v1;

use crate::WireError;

/// The read preference a request asks for; unknown numbers are refused (`MALFORMED_REQUEST`).
pub fn read_preference(value: i32) -> Result<ReadPreference, WireError> {
    match v1::ReadPreference::try_from(value) {
        Ok(v1::ReadPreference::Leader) => Ok(ReadPreference::Leader),
        Ok(v1::ReadPreference::Local) => Ok(ReadPreference::Local),
        Err(_) => Err(WireError::Protocol("unknown read_preference")),
    }
}

/// The command of a `SetMany` request; unequal lists are a typed error.
pub fn set_many(request: v1::SetManyRequest) -> Result<Command, RequestError> {
    Ok(Command::set_many(request.keys, request.values)?)
}

/// The command of a `CompareAndSet` request; both oneofs must be set.
pub fn compare_and_set(request: v1::CompareAndSetRequest) -> Result<Command, WireError> {
    use v1::compare_and_set_request::{Expected as WireExpected, New as WireNew};
    let expected = match request
        .expected
        .ok_or(WireError::MissingField("expected"))?
    {
        WireExpected::ExpectedValue(value) => Expected::Value(value),
        WireExpected::ExpectedRevision(revision) => Expected::Revision(revision),
        WireExpected::ExpectedAbsent(_) => Expected::Absent,
    };
    let new = match request.new.ok_or(WireError::MissingField("new"))? {
        WireNew::NewValue(value) => NewValue::Value(value),
        WireNew::Delete(_) => NewValue::Delete,
    };
    Ok(Command::CompareAndSet {
        key: request.key,
        expected,
        new,
    })
}

/// A key-value entry on the wire.
pub fn key_value(entry: KeyValue) -> v1::KeyValue {
    v1::KeyValue {
        key: entry.key,
        value: entry.value,
        revision: entry.revision,
    }
}

fn unexpected(response: &Response) -> RequestError {
    RequestError::Internal(format!("unexpected response {response:?}"))
}

/// The reply to a `Get`; a missing key is `NotFound`.
pub fn get_response(response: Response) -> Result<v1::GetResponse, RequestError> {
    match response {
        Response::Value(Some(entry)) => Ok(v1::GetResponse {
            entry: Some(key_value(entry)),
        }),
        Response::Value(None) => Err(RequestError::NotFound),
        other => Err(unexpected(&other)),
    }
}

/// The reply to a `GetMany`.
pub fn get_many_response(response: Response) -> Result<v1::GetManyResponse, RequestError> {
    match response {
        Response::Values(lookups) => Ok(v1::GetManyResponse {
            entries: lookups.into_iter().map(lookup).collect(),
        }),
        other => Err(unexpected(&other)),
    }
}

fn lookup(lookup: Lookup) -> v1::Lookup {
    match lookup.found {
        Some(found) => v1::Lookup {
            key: lookup.key,
            found: true,
            value: found.value,
            revision: found.revision,
        },
        None => v1::Lookup {
            key: lookup.key,
            found: false,
            value: Vec::new(),
            revision: 0,
        },
    }
}

/// The reply to a `GetPrefix` or `GetRange`.
pub fn range_response(response: Response) -> Result<v1::RangeResponse, RequestError> {
    match response {
        Response::Range { entries, more } => Ok(v1::RangeResponse {
            entries: entries.into_iter().map(key_value).collect(),
            more,
        }),
        other => Err(unexpected(&other)),
    }
}

/// The reply to a `Set` or `SetMany`.
pub fn write_response(response: Response) -> Result<v1::WriteResponse, RequestError> {
    match response {
        Response::Written { revision } => Ok(v1::WriteResponse { revision }),
        other => Err(unexpected(&other)),
    }
}

/// The reply to a `Delete`, `DeleteMany`, `DeletePrefix` or `DeleteAll`.
pub fn delete_response(response: Response) -> Result<v1::DeleteResponse, RequestError> {
    match response {
        Response::Deleted { revision, deleted } => Ok(v1::DeleteResponse { revision, deleted }),
        other => Err(unexpected(&other)),
    }
}

/// The reply to a `DeleteRange`.
pub fn delete_range_response(response: Response) -> Result<v1::DeleteRangeResponse, RequestError> {
    match response {
        Response::DeletedKeys {
            revision,
            keys,
            deleted,
            more,
        } => Ok(v1::DeleteRangeResponse {
            revision,
            keys,
            deleted,
            more,
        }),
        other => Err(unexpected(&other)),
    }
}

/// The reply to a `CompareAndSet`.
pub fn compare_and_set_response(
    response: Response,
) -> Result<v1::CompareAndSetResponse, RequestError> {
    match response {
        Response::CompareAndSet {
            revision,
            succeeded,
            current,
        } => Ok(v1::CompareAndSetResponse {
            succeeded,
            current: current.map(key_value),
            revision,
        }),
        other => Err(unexpected(&other)),
    }
}
