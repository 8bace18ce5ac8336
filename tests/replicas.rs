//! Several replicas sharing one store (`--store`): three simulators in this process, each
//! with its own listeners and certificates, and a real redis-server started by the test on a
//! free loopback port. Faults, the journal, coverage and rate limits agree across them, and
//! proxy traffic goes on when Redis goes away.

mod support;

use std::time::Duration;

use http::StatusCode;
use serde_json::{json, Value};
use ssp_sim::config::settings::Overrides;
use support::redis_server::RedisServer;
use support::*;

/// One replica of a set.
struct Replica {
    name: &'static str,
    sim: Sim,
    client: Client,
    admin: AdminClient,
}

/// Starts replicas named `names` on `routes`, sharing `redis`, and waits until each says its
/// store is ok.
async fn replicas(redis: &RedisServer, routes: &str, names: &[&'static str]) -> Vec<Replica> {
    let mut started = Vec::new();
    for &name in names {
        let sim = Sim::start_with(
            routes,
            Overrides {
                store: Some(redis.url()),
                replica_name: Some(name.into()),
                ..Overrides::default()
            },
        )
        .await;
        let replica = Replica {
            name,
            client: sim.client(),
            admin: sim.admin_client(),
            sim,
        };
        eventually(&format!("{name}'s store is ok"), || async {
            let health = replica.admin.get("/health").await.json();
            (health["store"]["state"] == "ok").then_some(())
        })
        .await;
        started.push(replica);
    }
    started
}

/// Waits until `check` gives a value; panics naming `what` after a generous bound (this is a
/// condition awaited, not a timing asserted).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..400 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("gave up waiting until {what}");
}

async fn stop(replicas: Vec<Replica>) {
    for replica in replicas {
        replica.sim.stop().await;
    }
}

/// The ids of the faults a replica lists.
async fn fault_ids(admin: &AdminClient) -> Vec<String> {
    let listed = admin.get("/faults").await.json();
    listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|f| f["id"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn a_fault_added_on_one_replica_fires_exactly_once_across_the_others() {
    let redis = RedisServer::start().await;
    let backend = Backend::start().await;
    let set = replicas(&redis, &routes(&backend.url()), &["a", "b", "c"]).await;
    let id = set[0]
        .admin
        .add_fault(json!({"respond": {"status": 418, "body": {"fault": true}}, "times": 1}))
        .await;
    for replica in &set[1..] {
        eventually(&format!("{} holds {id}", replica.name), || async {
            fault_ids(&replica.admin).await.contains(&id).then_some(())
        })
        .await;
    }
    // Twelve requests at once, spread over B and C: the one use is taken by exactly one.
    let sends = (0..12).map(|i| set[1 + i % 2].client.send(Call::metadata()));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(sends)
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    let teapots = statuses
        .iter()
        .filter(|s| **s == StatusCode::IM_A_TEAPOT)
        .count();
    assert_eq!(teapots, 1, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        11,
        "{statuses:?}"
    );
    // Spent, it is gone from every replica, and never fires again.
    for replica in &set {
        eventually(&format!("{id} is gone from {}", replica.name), || async {
            (!fault_ids(&replica.admin).await.contains(&id)).then_some(())
        })
        .await;
    }
    for replica in &set {
        replica
            .client
            .send(Call::metadata())
            .await
            .assert_status(StatusCode::OK);
    }
    stop(set).await;
}

#[tokio::test]
async fn a_fault_removed_on_one_replica_stops_firing_on_the_others() {
    let redis = RedisServer::start().await;
    let backend = Backend::start().await;
    let set = replicas(&redis, &routes(&backend.url()), &["a", "b"]).await;
    let id = set[0]
        .admin
        .add_fault(json!({"respond": {"status": 418, "body": {}}}))
        .await;
    eventually("b holds the fault", || async {
        fault_ids(&set[1].admin).await.contains(&id).then_some(())
    })
    .await;
    set[1]
        .client
        .send(Call::metadata())
        .await
        .assert_status(StatusCode::IM_A_TEAPOT);
    set[1]
        .client
        .send(Call::metadata())
        .await
        .assert_status(StatusCode::IM_A_TEAPOT);
    // Firings of a rule without a budget are counted in the background.
    eventually("a counts both firings", || async {
        let listed = set[0].admin.get("/faults").await.json();
        (listed[0]["fired"] == 2).then_some(())
    })
    .await;
    assert_eq!(
        set[1].admin.delete(&format!("/faults/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    eventually("a no longer holds the fault", || async {
        (!fault_ids(&set[0].admin).await.contains(&id)).then_some(())
    })
    .await;
    set[0]
        .client
        .send(Call::metadata())
        .await
        .assert_status(StatusCode::OK);
    stop(set).await;
}

#[tokio::test]
async fn every_replica_journal_shows_requests_served_by_the_others() {
    let redis = RedisServer::start().await;
    let backend = Backend::start().await;
    let set = replicas(&redis, &routes(&backend.url()), &["a", "b", "c"]).await;
    let on_b = Call::metadata();
    let on_c = Call::metadata().header("Ssp-To", "000000000000");
    set[1]
        .client
        .send(on_b.clone())
        .await
        .assert_status(StatusCode::OK);
    // Each replica appends in the background: C's request is sent once B's is in.
    let holds = |journal: &Value, trace: &str| {
        journal
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["trace_id"] == trace))
    };
    eventually("a's journal holds b's request", || async {
        let journal = set[0].admin.get("/journal").await.json();
        holds(&journal, on_b.trace_id()).then_some(())
    })
    .await;
    set[2].client.send(on_c.clone()).await;
    let journal: Value = eventually("a's journal holds c's request", || async {
        let journal = set[0].admin.get("/journal").await.json();
        holds(&journal, on_c.trace_id()).then_some(journal)
    })
    .await;
    let entry = |trace: &str| {
        journal
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["trace_id"] == trace)
            .cloned()
            .unwrap_or_else(|| panic!("{trace} missing from {journal}"))
    };
    let b = entry(on_b.trace_id());
    assert_eq!(
        (b["replica"].as_str(), b["status"].as_u64()),
        (Some("b"), Some(200))
    );
    let c = entry(on_c.trace_id());
    assert_eq!(c["replica"], "c");
    assert_eq!(c["error"], "receiver-asid-not-authorised");
    // Newest first, numbered in one order for all replicas.
    assert!(
        journal[0]["id"].as_u64() > journal[1]["id"].as_u64(),
        "{journal}"
    );
    assert_eq!(journal[0]["trace_id"], on_c.trace_id());
    // The trace filter reads the shared journal too.
    let only = set[0]
        .admin
        .get(&format!("/journal?trace_id={}", on_b.trace_id()))
        .await
        .json();
    assert_eq!(only.as_array().map(Vec::len), Some(1), "{only}");
    stop(set).await;
}

#[tokio::test]
async fn a_rate_limit_holds_across_replicas() {
    let redis = RedisServer::start().await;
    let backend = Backend::start().await;
    // A window long enough that no request is replenished while the test runs.
    let routes = routes(&backend.url()).replacen(
        "may_send_to = [\"*\"]\n",
        "may_send_to = [\"*\"]\nrate_limit = { requests = 4, per_seconds = 600 }\n",
        1,
    );
    let set = replicas(&redis, &routes, &["a", "b", "c"]).await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(set[i % 3].client.send(Call::metadata()).await.status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    stop(set).await;
}

#[tokio::test]
async fn coverage_counted_on_each_replica_shows_in_every_report() {
    let redis = RedisServer::start().await;
    let backend = Backend::start().await;
    let set = replicas(&redis, &routes(&backend.url()), &["a", "b", "c"]).await;
    set[1]
        .client
        .send(Call::metadata())
        .await
        .assert_status(StatusCode::OK);
    set[2]
        .client
        .send(Call::metadata().header("Ssp-To", "000000000000"))
        .await;
    let consumer = eventually("a's report counts both", || async {
        let report = set[0].admin.get("/report").await.json();
        let consumer = report["consumers"]
            .as_array()?
            .iter()
            .find(|c| c["asid"] == CONSUMER)?
            .clone();
        (consumer["requests"] == 2).then_some(consumer)
    })
    .await;
    assert_eq!(consumer["interactions"][METADATA], 2, "{consumer}");
    assert_eq!(
        consumer["ssp_errors"]["receiver-asid-not-authorised"], 1,
        "{consumer}"
    );
    assert_eq!(
        set[2].admin.delete("/report").await.status,
        StatusCode::NO_CONTENT
    );
    let report = set[1].admin.get("/report").await.json();
    let requests: Vec<&Value> = report["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["requests"])
        .collect();
    assert!(requests.iter().all(|n| **n == 0), "{report}");
    stop(set).await;
}

#[tokio::test]
async fn redis_going_away_loses_no_request_and_the_replica_recovers() {
    let mut redis = RedisServer::start().await;
    let backend = Backend::start().await;
    // A limit far above the load, so every request asks the store (and must not wait on it).
    let routes = routes(&backend.url()).replacen(
        "may_send_to = [\"*\"]\n",
        "may_send_to = [\"*\"]\nrate_limit = { requests = 100000, per_seconds = 1 }\n",
        1,
    );
    let set = replicas(&redis, &routes, &["a", "b"]).await;
    let metrics = set[0].admin.get("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert_eq!(
        metric(&text, "ssp_sim_replica_info{replica=\"a\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "ssp_sim_store_up{replica=\"a\"}"),
        Some(1.0),
        "{text}"
    );

    // A bounded load on both replicas: a third of it, then Redis is killed, then the rest.
    let (killed, heard) = tokio::sync::watch::channel(false);
    let third = std::sync::Arc::new(tokio::sync::Barrier::new(3));
    let load = |replica: &Replica| {
        let (client, mut heard, third) = (replica.client.clone(), heard.clone(), third.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..150 {
                if i == 50 {
                    third.wait().await;
                    let _ = heard.wait_for(|k| *k).await;
                }
                statuses.push(
                    client
                        .try_send(Call::metadata())
                        .await
                        .map(|r| r.status)
                        .ok(),
                );
            }
            statuses
        })
    };
    let loads = [load(&set[0]), load(&set[1])];
    third.wait().await;
    redis.kill();
    let _ = killed.send(true);
    for load in loads {
        let statuses = load.await.unwrap();
        assert!(
            statuses.iter().all(|s| *s == Some(StatusCode::OK)),
            "{statuses:?}"
        );
    }
    for replica in &set {
        let health = eventually(&format!("{} says degraded", replica.name), || async {
            let health = replica.admin.get("/health").await;
            health.assert_status(StatusCode::OK);
            let health = health.json();
            (health["status"] == "degraded").then_some(health)
        })
        .await;
        assert_eq!(health["store"]["state"], "degraded", "{health}");
        assert!(
            health["store"]["reason"]
                .as_str()
                .is_some_and(|r| !r.is_empty()),
            "{health}"
        );
    }
    // Degraded, each replica still serves, journals and answers its admin API alone.
    let alone = Call::metadata();
    set[0]
        .client
        .send(alone.clone())
        .await
        .assert_status(StatusCode::OK);
    let journal = set[0]
        .admin
        .get(&format!("/journal?trace_id={}", alone.trace_id()))
        .await
        .json();
    assert_eq!(journal.as_array().map(Vec::len), Some(1), "{journal}");
    let text = String::from_utf8_lossy(&set[0].admin.get("/metrics").await.body).into_owned();
    assert_eq!(
        metric(&text, "ssp_sim_store_up{replica=\"a\"}"),
        Some(0.0),
        "{text}"
    );
    assert!(
        metric(&text, "ssp_sim_store_errors_total{replica=\"a\"}").unwrap_or(0.0) >= 1.0,
        "{text}"
    );

    // Back on the same port, empty: both replicas reconnect by themselves.
    redis.restart().await;
    for replica in &set {
        eventually(&format!("{} says ok again", replica.name), || async {
            let health = replica.admin.get("/health").await.json();
            (health["status"] == "ok").then_some(())
        })
        .await;
    }
    // Entries reach Redis again: B's journal (read from the store) shows A's request.
    let after = Call::metadata();
    set[0]
        .client
        .send(after.clone())
        .await
        .assert_status(StatusCode::OK);
    let path = format!("/journal?trace_id={}", after.trace_id());
    let seen = eventually("b's journal shows a's request", || async {
        let journal = set[1].admin.get(&path).await.json();
        journal.as_array().and_then(|e| e.first().cloned())
    })
    .await;
    assert_eq!(seen["replica"], "a", "{seen}");
    assert!(
        redis
            .command(&["XLEN", "ssp-sim:journal"])
            .await
            .is_some_and(|n| n != ":0"),
        "the stream holds entries"
    );
    stop(set).await;
}

#[tokio::test]
async fn every_replica_console_stream_shows_requests_served_by_the_others() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let redis = RedisServer::start().await;
    let backend = Backend::start().await;
    let set = replicas(&redis, &routes(&backend.url()), &["a", "b"]).await;
    let mut stream = tokio::net::TcpStream::connect(set[0].sim.admin.unwrap())
        .await
        .unwrap();
    stream
        .write_all(b"GET /journal/stream HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut seen = String::new();
    let mut buffer = vec![0; 16 * 1024];
    while !seen.contains(": connected") {
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the stream closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    let call = Call::metadata();
    set[1]
        .client
        .send(call.clone())
        .await
        .assert_status(StatusCode::OK);
    let wanted = format!("\"trace_id\":\"{}\"", call.trace_id());
    let read = async {
        while !seen.contains(&wanted) {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the stream closed: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("b's request arrives on a's stream");
    let event = seen.lines().find(|l| l.contains(&wanted)).unwrap();
    assert!(event.contains("\"replica\":\"b\""), "{event}");
    stop(set).await;
}

#[tokio::test]
async fn faults_declared_in_routes_toml_stay_each_replica_own() {
    let redis = RedisServer::start().await;
    let backend = Backend::start().await;
    let routes = format!(
        "{}\n[[fault]]\nrespond = {{ status = 418, body = {{}} }}\ntimes = 1\n",
        routes(&backend.url())
    );
    let set = replicas(&redis, &routes, &["a", "b"]).await;
    // Every replica reads the same file and counts its own: `times = 1` fires once on each.
    for replica in &set {
        let listed = replica.admin.get("/faults").await.json();
        assert_eq!(listed[0]["origin"], "routes", "{listed}");
        assert!(
            listed[0]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("routes-")),
            "{listed}"
        );
        let first = replica.client.send(Call::metadata()).await;
        first.assert_status(StatusCode::IM_A_TEAPOT);
        replica
            .client
            .send(Call::metadata())
            .await
            .assert_status(StatusCode::OK);
    }
    // An API fault beside it is numbered by the store, apart from the declared ones.
    let id = set[0]
        .admin
        .add_fault(json!({"respond": {"drop": true}, "times": 1}))
        .await;
    assert!(id.starts_with("fault-"), "{id}");
    stop(set).await;
}
