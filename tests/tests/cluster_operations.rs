//! Every operation's semantics on a 3-node cluster over real TCP on loopback with LMDB in
//! temporary directories, called on each node (followers forward to the leader).

use dbadger::{Error, Expected, NewValue, ReadPreference};
use dbadger_tests::start_cluster;

/// Each node runs the whole operation set on its own key space and sees the effects; Local
/// reads on every node converge to the same answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_on_every_node() {
    let nodes = start_cluster(3).await;
    let voters = nodes[0]
        .db
        .nodes()
        .into_iter()
        .filter(|(_, _, voter)| *voter)
        .count();
    assert_eq!(voters, 3, "three voters: {:?}", nodes[0].db.nodes());
    for (n, node) in nodes.iter().enumerate() {
        let db = &node.db;
        let p = |s: &str| format!("n{n}/{s}").into_bytes();

        let revision = db.set(p("a"), b"1").await.expect("set");
        let entry = db.get(p("a"), ReadPreference::Leader).await.expect("get");
        assert_eq!(
            (entry.value.as_slice(), entry.revision),
            (&b"1"[..], revision)
        );
        assert_eq!(
            db.get(p("missing"), ReadPreference::Leader).await,
            Err(Error::NotFound)
        );

        db.set_many(&[p("b"), p("c"), p("d")], &[b"2", b"3", b"4"])
            .await
            .expect("set_many");
        assert!(matches!(
            db.set_many(&[p("x")], &[b"1", b"2"]).await,
            Err(Error::InvalidArgument(_))
        ));
        let lookups = db
            .get_many(&[p("b"), p("nope"), p("d")], ReadPreference::Leader)
            .await
            .expect("get_many");
        assert_eq!(
            lookups
                .iter()
                .map(|l| l.found.is_some())
                .collect::<Vec<_>>(),
            [true, false, true]
        );

        let prefix = db
            .get_prefix(format!("n{n}/"), ReadPreference::Leader)
            .await
            .expect("prefix");
        assert_eq!(prefix.entries.len(), 4);
        let range = db
            .get_range(Some(&p("b")), Some(&p("c")), 0, ReadPreference::Leader)
            .await
            .expect("range");
        assert_eq!(
            range
                .entries
                .iter()
                .map(|e| e.key.clone())
                .collect::<Vec<_>>(),
            [p("b"), p("c")],
            "inclusive"
        );
        let counted = db
            .get_range(Some(&p("a")), None, 2, ReadPreference::Leader)
            .await
            .expect("range");
        assert!(counted.more && counted.entries.len() == 2);

        let cas = db
            .compare_and_set(
                p("a"),
                Expected::Value(b"1".to_vec()),
                NewValue::Value(b"9".to_vec()),
            )
            .await
            .expect("cas");
        assert!(cas.succeeded);
        let stale = db
            .compare_and_set(p("a"), Expected::Revision(revision), NewValue::Delete)
            .await
            .expect("cas");
        assert!(!stale.succeeded, "the revision moved on");
        assert_eq!(stale.current.map(|c| c.value), Some(b"9".to_vec()));
        let absent = db
            .compare_and_set(p("new"), Expected::Absent, NewValue::Value(b"x".to_vec()))
            .await
            .expect("cas");
        assert!(absent.succeeded);

        assert_eq!(
            db.delete(p("missing")).await.expect("delete").deleted,
            0,
            "deleting a missing key succeeds"
        );
        let removed = db
            .delete_range(Some(&p("b")), Some(&p("c")))
            .await
            .expect("delete_range");
        assert_eq!(removed.keys, [p("b"), p("c")]);
        assert_eq!(
            db.delete_many(&[p("d"), p("zz")])
                .await
                .expect("delete_many")
                .deleted,
            1
        );
        assert_eq!(
            db.delete_prefix(format!("n{n}/"))
                .await
                .expect("delete_prefix")
                .deleted,
            2
        );
        assert!(
            db.get_prefix(format!("n{n}/"), ReadPreference::Leader)
                .await
                .expect("prefix")
                .entries
                .is_empty()
        );

        assert!(matches!(
            db.set(b"", b"v").await,
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            db.set(vec![b'k'; 512], b"v").await,
            Err(Error::InvalidArgument(_))
        ));
    }
    let last = nodes[0].db.set(b"final", b"value").await.expect("set");
    for node in &nodes {
        // A Local read is eventually consistent: once this node applied the write, it sees it.
        node.db
            .wait_applied(last)
            .await
            .expect("applied everywhere");
        let entry = node
            .db
            .get(b"final", ReadPreference::Local)
            .await
            .expect("local read");
        assert_eq!(entry.revision, last);
    }
    assert_eq!(
        nodes[0].db.delete_all().await.expect("delete_all").deleted,
        1
    );
    for node in &nodes {
        node.db.close().await;
    }
}

/// Every write answered on a node is seen by a Local read sent to that node right after the
/// answer, although the answer goes out before the state machine's commit has flushed (the
/// read waits at the store's barrier). Leader and followers alike: a follower answers a
/// forwarded write once it applied it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_read_right_after_an_answer_sees_the_write() {
    dbadger_tests::guarded(std::time::Duration::from_secs(120), async {
        let nodes = start_cluster(3).await;
        for (n, node) in nodes.iter().enumerate() {
            let key = format!("read-your-write/{n}").into_bytes();
            for i in 0..100u32 {
                let value = i.to_be_bytes();
                let revision = node.db.set(key.clone(), value).await.expect("set");
                let entry = node
                    .db
                    .get(key.clone(), ReadPreference::Local)
                    .await
                    .expect("local read");
                assert_eq!(
                    (entry.value.as_slice(), entry.revision),
                    (&value[..], revision),
                    "node {n}, write {i}: the Local read missed the answered write"
                );
            }
        }
        for node in &nodes {
            node.db.close().await;
        }
    })
    .await;
}
