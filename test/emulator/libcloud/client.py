"""Apache libcloud's ElasticHosts driver (Debian's python3-libcloud) against the emulator.

Usage: EMULATOR_KEY=... client.py create URL USER IMAGE_UUID
       EMULATOR_KEY=... client.py cleanup URL USER NODE_ID... -- DRIVE_UUID...
Prints one JSON object on stdout with what libcloud returned; the test checks it and,
over the API, what the emulator holds. The API key comes from the environment, so it
is in no command line, and is never printed.
"""
import json
import os
import sys
from urllib.parse import urlparse

from libcloud.compute.base import NodeImage
from libcloud.compute.drivers.elastichosts import ElasticHostsNodeDriver


def driver(url, user, key):
    u = urlparse(url)
    return ElasticHostsNodeDriver(user, key, secure=False, host=u.hostname, port=u.port)


def node_facts(node):
    return {
        "id": node.id,
        "name": node.name,
        "state": str(node.state),
        "public_ips": node.public_ips,
        "extra": {k: v for k, v in node.extra.items() if k != "password"},
    }


def create(d, image_uuid):
    size = next(s for s in d.list_sizes() if s.id == "small")
    image = NodeImage(id=image_uuid, name="diskless boot image", driver=d)
    nodes = [d.create_node(name=name, size=size, image=image) for name in ("node-a", "node-b")]
    listed = d.list_nodes()
    renamed = d.ex_set_node_configuration(nodes[0], name="node-a-renamed")
    rebooted = d.reboot_node(nodes[0])
    try:
        d.ex_destroy_drive("00000000-0000-4000-8000-00000000dead")
        missing_drive = None
    except Exception as error:  # libcloud raises its parse_error() text
        missing_drive = str(error)
    return {
        "created": [node_facts(n) for n in nodes],
        "listed": [node_facts(n) for n in listed],
        "renamed": renamed,
        "rebooted": rebooted,
        "missing_drive": missing_drive,
    }


def cleanup(d, node_ids, drive_uuids):
    nodes = {n.id: n for n in d.list_nodes()}
    first, *rest = node_ids
    shut_down = d.ex_shutdown_node(nodes[first])
    destroyed = [d.destroy_node(nodes[i]) for i in rest]
    drives_destroyed = [d.ex_destroy_drive(u) for u in drive_uuids]
    return {
        "shut_down": shut_down,
        "destroyed": destroyed,
        "drives_destroyed": drives_destroyed,
        "left": [n.id for n in d.list_nodes()],
    }


def main(argv):
    command, url, user, *rest = argv
    d = driver(url, user, os.environ["EMULATOR_KEY"])
    if command == "create":
        out = create(d, rest[0])
    else:
        split = rest.index("--")
        out = cleanup(d, rest[:split], rest[split + 1 :])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
