use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rl_core::{CollectiveError, Communicator};

use crate::TcpGroup;

const SHORT: Duration = Duration::from_secs(5);

/// A run of `n` workers on loopback, each on its own thread running `work(group)`; the
/// results in rank order.
fn run<T: Send + 'static>(
    n: usize,
    work: impl Fn(TcpGroup) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let listener = TcpGroup::listen("127.0.0.1:0").expect("listen");
    let master = listener.local_addr().expect("addr").to_string();
    let work = Arc::new(work);
    let mut handles = Vec::new();
    for rank in 1..n {
        let (work, master) = (work.clone(), master.clone());
        handles.push(std::thread::spawn(move || {
            work(TcpGroup::join(rank, n, &master, SHORT).expect("join"))
        }));
    }
    let root = TcpGroup::root(listener, n, SHORT).expect("root");
    let mut out = vec![work(root)];
    out.extend(
        handles
            .into_iter()
            .map(|h| h.join().expect("worker thread")),
    );
    out
}

#[test]
fn all_reduce_sums_in_rank_order_and_every_worker_gets_the_same_bits() {
    let results = run(3, |g| {
        let r = g.rank() as f32;
        // Values whose sum depends on the order of the additions in f32.
        let mut v = vec![1.0e8 * (1.0 - r), 1.0 + r, 0.1 * (r + 1.0)];
        g.all_reduce_sum_f32(&mut v, "test").expect("sum");
        let mut d = vec![g.rank() as f64, 0.5];
        g.all_reduce_sum_f64(&mut d, "test").expect("sum");
        (v, d)
    });
    let expected = {
        let mut acc = [1.0e8f32, 1.0, 0.1];
        for r in 1..3 {
            let r = r as f32;
            for (a, x) in acc
                .iter_mut()
                .zip([1.0e8 * (1.0 - r), 1.0 + r, 0.1 * (r + 1.0)])
            {
                *a += x;
            }
        }
        acc
    };
    for (v, d) in &results {
        assert_eq!(v.as_slice(), expected.as_slice());
        assert_eq!(d, &[3.0, 1.5]);
    }
}

#[test]
fn broadcast_and_gather() {
    let results = run(3, |g| {
        let b = g
            .broadcast(vec![g.rank() as u8 + 7; 3], "test")
            .expect("broadcast");
        let all = g
            .gather(vec![g.rank() as u8; g.rank() + 1], "test")
            .expect("gather");
        (b, all)
    });
    for (rank, (b, all)) in results.into_iter().enumerate() {
        assert_eq!(b, vec![7, 7, 7], "rank 0's bytes everywhere");
        if rank == 0 {
            assert_eq!(all, Some(vec![vec![0], vec![1, 1], vec![2, 2, 2]]));
        } else {
            assert_eq!(all, None);
        }
    }
}

#[test]
fn a_run_of_one_needs_no_network() {
    let g = TcpGroup::connect(0, 1, "not an address", SHORT).expect("alone");
    let mut v = [1.5f32, -2.0];
    g.all_reduce_sum_f32(&mut v, "test").expect("sum");
    assert_eq!(v, [1.5, -2.0]);
    assert_eq!(
        g.gather(vec![1], "test").expect("gather"),
        Some(vec![vec![1]])
    );
}

#[test]
fn a_worker_that_leaves_is_named_by_rank_0_and_by_the_others() {
    let results = run(3, |g| {
        let mut v = [1.0f32];
        g.all_reduce_sum_f32(&mut v, "first").expect("first call");
        if g.rank() == 2 {
            drop(g); // the process ends: its connection closes
            return None;
        }
        let start = Instant::now();
        let err = g
            .all_reduce_sum_f32(&mut v, "second")
            .expect_err("worker 2 left");
        assert!(
            start.elapsed() < SHORT,
            "seen at once, not after the timeout"
        );
        // Every later call fails the same way.
        let again = g.broadcast(vec![], "third").expect_err("failed group");
        assert_eq!(again.to_string(), err.to_string());
        Some(err)
    });
    match &results[0] {
        Some(CollectiveError::WorkerLost { rank: 2, .. }) => {}
        other => panic!("rank 0: {other:?}"),
    }
    match &results[1] {
        Some(CollectiveError::Aborted { rank: 2, reason }) => {
            assert!(reason.contains("worker 2 of 3 left"), "{reason}")
        }
        other => panic!("rank 1: {other:?}"),
    }
}

#[test]
fn an_abort_reaches_every_worker_with_its_reason() {
    let results = run(3, |g| {
        if g.rank() == 1 {
            g.abort("non-finite values in Loss/value");
            return None;
        }
        // A worker's gather only sends; the next call that waits for rank 0 hears it.
        let r = g
            .gather(vec![], "test")
            .and_then(|_| g.broadcast(vec![], "test"));
        Some(r.expect_err("aborted"))
    });
    for r in [0, 2] {
        match &results[r] {
            Some(CollectiveError::Aborted { rank: 1, reason }) => {
                assert_eq!(reason, "non-finite values in Loss/value")
            }
            other => panic!("rank {r}: {other:?}"),
        }
    }
}

#[test]
fn a_worker_that_never_joins_times_out_with_its_rank() {
    let listener = TcpGroup::listen("127.0.0.1:0").expect("listen");
    let master = listener.local_addr().expect("addr").to_string();
    let worker = std::thread::spawn(move || {
        TcpGroup::join(1, 3, &master, Duration::from_secs(2)).map(|_| ())
    });
    let start = Instant::now();
    let err = TcpGroup::root(listener, 3, Duration::from_millis(500)).expect_err("rank 2 missing");
    assert!(start.elapsed() < Duration::from_secs(3));
    match &err {
        CollectiveError::Timeout {
            rank: 2, during, ..
        } => {
            assert!(during.contains("[2]"), "{during}")
        }
        other => panic!("{other:?}"),
    }
    // The worker that did join learns that the run never started.
    assert!(worker.join().expect("thread").is_err());
}

#[test]
fn a_worker_whose_master_is_not_there_times_out() {
    // A port that nobody listens on: bind one, then free it.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let err = TcpGroup::join(
        1,
        2,
        &format!("127.0.0.1:{port}"),
        Duration::from_millis(300),
    )
    .expect_err("no master");
    match &err {
        CollectiveError::Timeout {
            rank: 0, during, ..
        } => {
            assert!(during.contains(&port.to_string()), "{during}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_addresses_and_ranks_are_clear_errors() {
    for bad in [
        "localhost",
        "127.0.0.1:notaport",
        "no-such-host.invalid:29500",
    ] {
        let err = TcpGroup::connect(1, 2, bad, SHORT).expect_err(bad);
        assert!(
            matches!(&err, CollectiveError::Address { address, .. } if address == bad),
            "{bad}: {err:?}"
        );
    }
    // A port in use.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let err = TcpGroup::connect(0, 2, &addr, SHORT).expect_err("in use");
    assert!(err.to_string().contains("cannot listen"), "{err}");
    // Ranks outside the run.
    assert!(TcpGroup::connect(2, 2, &addr, SHORT).is_err());
    assert!(TcpGroup::connect(0, 0, &addr, SHORT).is_err());
}

#[test]
fn workers_out_of_step_are_refused() {
    // A worker started with another world size.
    let listener = TcpGroup::listen("127.0.0.1:0").expect("listen");
    let master = listener.local_addr().expect("addr").to_string();
    let worker = std::thread::spawn(move || TcpGroup::join(1, 3, &master, SHORT).map(|_| ()));
    let err = TcpGroup::root(listener, 2, SHORT).expect_err("world size differs");
    assert!(err.to_string().contains("world size 3"), "{err}");
    let theirs = worker.join().expect("thread").expect_err("refused");
    assert!(theirs.to_string().contains("world size 3"), "{theirs}");

    // Workers that make different calls, or sums of different lengths.
    let results = run(2, |g| {
        let a = if g.rank() == 0 {
            g.gather(vec![1], "x").map(drop)
        } else {
            g.all_reduce_sum_f32(&mut [1.0], "x")
        };
        a.expect_err("different calls")
    });
    assert!(
        matches!(&results[0], CollectiveError::Mismatch { rank: 1, message }
            if message.contains("all-reduce (f32) while this worker called gather")),
        "{}",
        results[0]
    );
    // The worker out of step hears it from rank 0 rather than waiting.
    assert!(
        matches!(&results[1], CollectiveError::Aborted { rank: 1, .. }),
        "{}",
        results[1]
    );
    let results = run(2, |g| {
        let mut v = vec![0.0f32; 2 + g.rank()];
        g.all_reduce_sum_f32(&mut v, "gradients")
            .expect_err("lengths differ")
    });
    assert!(matches!(
        results[0],
        CollectiveError::Mismatch { rank: 1, .. }
    ));
    assert!(
        results[0].to_string().contains("gradients"),
        "{}",
        results[0]
    );
}
