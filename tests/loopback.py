"""Two-process tf.distribute tests on this machine: free loopback ports and each worker's TF_CONFIG."""
import json
import socket


def free_ports(count):
    """``count`` TCP ports on 127.0.0.1 that were free a moment ago (bound together, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports, index):
    """The TF_CONFIG of worker ``index`` of a cluster of workers on 127.0.0.1 at ``ports``."""
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})
