//! `multipeer serve --cluster`: the relay as one instance of a cluster (CLUSTER.md).

use multipeer_mio::{Server, Stop};

use crate::args::ClusterArgs;
use crate::status::Status;

/// Joins the cluster, then runs the server with the cluster link pumped at every turn.
#[cfg(feature = "cluster")]
pub(crate) fn run(
    args: ClusterArgs,
    server: &mut Server,
    stop: &Stop,
    status: &mut Status,
) -> Result<(), String> {
    use multipeer_mio::{ClusterLink, ClusterOptions};

    let node_name = args.node.unwrap_or_else(|| {
        server.local_addrs().first().map_or_else(|| "multipeer".into(), ToString::to_string)
    });
    let options = ClusterOptions {
        url: args.url.clone(),
        cluster: args.name.clone(),
        node_name: node_name.clone(),
        node_index: args.node_index,
        credentials: args.credentials,
        tls_ca: args.tls_ca,
    };
    let mut link = ClusterLink::start(options, stop)?;
    let now = server.now();
    server.peer_mut().join_cluster(now, link.config());
    eprintln!(
        "multipeer: cluster {} through {}: node {node_name}, index {}",
        args.name,
        args.url,
        link.node_index()
    );
    status.set_cluster_node(&node_name, link.node_index());
    let mut lease_lost = false;
    server
        .run(stop, None, |server| {
            let again = link.pump(server);
            let s = link.status();
            status.set_cluster_link(s.connected, s.outages, s.slow_consumer, s.dropped_out);
            if link.status().lease_lost && !lease_lost {
                // Another instance holds our index now: our ids could collide with its ids.
                lease_lost = true;
                eprintln!("multipeer: cluster lease of node index {} lost; stopping", link.node_index());
                stop.raise();
            }
            let line = status.tick(server);
            // Cluster messages produced while the status ran go out in this turn too.
            link.pump(server);
            match (again, line) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        })
        .map_err(|e| format!("event loop failed: {e}"))?;
    if lease_lost {
        return Err("cluster lease lost".into());
    }
    Ok(())
}

/// Without the `cluster` feature: a clear refusal.
#[cfg(not(feature = "cluster"))]
pub(crate) fn run(
    args: ClusterArgs,
    server: &mut Server,
    stop: &Stop,
    status: &mut Status,
) -> Result<(), String> {
    let _ = (server, stop, status);
    Err(format!(
        "--cluster {}: this multipeer was built without the `cluster` feature (cargo build --features cluster)",
        args.url
    ))
}
