"""Commit planning: mapping checks and wiring, without a network."""

import pytest

import chimerapy as cp
from chimerapy.manager.commit_plan import WorkerRef, plan_commit

WORKERS = [WorkerRef("w1", "id-1"), WorkerRef("w2", "id-2")]


def diamond():
    a, b, c, d = (cp.Node(n) for n in "abcd")
    graph = cp.Graph()
    graph.add_edges([(a, b), (a, c), (b, d)])
    graph.add_edge(c, d, latest_only=True)
    return graph, (a, b, c, d)


def test_placement_by_names_ids_and_objects():
    graph, (a, b, c, d) = diamond()
    plan = plan_commit(graph, {"w1": ["a", b.id], "id-2": [c, "d"]}, WORKERS)
    assert plan.placement == {"a": "w1", "b": "w1", "c": "w2", "d": "w2"}
    specs = {s["name"]: s for s in plan.node_specs("w2")}
    assert specs["d"]["inputs"] == ["b", "c"] and specs["d"]["followed"] == "b"
    assert specs["c"]["consumers"] == [{"name": "d", "mode": "latest", "key": plan.keys["d"].public}]
    wiring = plan.connections({n: {m: f"ipc://{n}-{m}" for m in "abcd"} for n in "abcd"})
    assert wiring["w2"]["inputs"]["d"] == [
        {"producer": "b", "address": "ipc://b-d", "latest_only": False, "server_key": None},
        {"producer": "c", "address": "ipc://c-d", "latest_only": True, "server_key": None},
    ]
    assert wiring["w1"]["consumers"]["a"] == [{"name": "b", "latest_only": False, "mode": "lossless"}, {"name": "c", "latest_only": False, "mode": "lossless"}]


def test_nodes_sharing_a_name_are_placed_and_wired_by_unique_name():
    gen_a, gen_b, con_a, con_b = cp.Node("gen"), cp.Node("gen"), cp.Node("con"), cp.Node("con")
    graph = cp.Graph()
    graph.add_edges([(gen_a, con_a), (gen_b, con_b)])
    plan = plan_commit(graph, {"w1": [gen_a.id, con_a], "w2": [gen_b.id, con_b.id]}, WORKERS)
    assert plan.placement == {"gen": "w1", "con": "w1", "gen-2": "w2", "con-2": "w2"}
    assert set(plan.keys) == {"gen", "con", "gen-2", "con-2"}
    specs = {s["name"]: s for s in plan.node_specs("w2")}
    assert set(specs) == {"gen-2", "con-2"} and specs["gen-2"]["id"] == gen_b.id
    # data_chunks are keyed by the producer's own name; consumers and keys by unique name
    assert specs["con-2"]["inputs"] == ["gen"] and specs["con-2"]["followed"] == "gen"
    assert specs["gen-2"]["consumers"] == [{"name": "con-2", "mode": "lossless", "key": plan.keys["con-2"].public}]
    names = list(plan.placement)
    wiring = plan.connections({n: {m: f"ipc://{n}-{m}" for m in names} for n in names})
    assert wiring["w2"]["inputs"] == {"con-2": [{"producer": "gen", "address": "ipc://gen-2-con-2",
                                                 "latest_only": False, "server_key": None}]}
    assert wiring["w1"]["inputs"]["con"][0]["address"] == "ipc://gen-con"
    assert wiring["w2"]["consumers"] == {"gen-2": [{"name": "con-2", "latest_only": False, "mode": "lossless"}]}


def test_a_shared_name_in_the_mapping_is_refused_naming_it():
    gen_a, gen_b = cp.Node("gen"), cp.Node("gen")
    graph = cp.Graph()
    graph.add_nodes([gen_a, gen_b])
    with pytest.raises(cp.MappingError, match=r"names node 'gen', but 2 nodes are named 'gen'.*id.*rename"):
        plan_commit(graph, {"w1": ["gen", gen_b.id]}, WORKERS)
    plan = plan_commit(graph, {"w1": [gen_a.id], "w2": ["gen-2"]}, WORKERS)  # a unique name is unambiguous
    assert plan.placement == {"gen": "w1", "gen-2": "w2"}


@pytest.mark.parametrize("mapping, match", [
    ({"w11": ["a", "b", "c", "d"]}, r"unknown Worker 'w11' \(did you mean 'w1'"),
    ({"w1": ["a", "b", "c", "dd"]}, r"unknown node 'dd' \(did you mean 'd'"),
    ({"w1": ["a", "b", "c"]}, r"\['d'\] are not mapped"),
    ({"w1": ["a", "b", "c", "d"], "w2": ["d"]}, "mapped twice"),
    ({"w1": "abcd"}, "must be a list"),
    (["w1"], "must be a dict"),
])
def test_bad_mappings_are_named(mapping, match):
    graph, _ = diamond()
    with pytest.raises(cp.MappingError, match=match):
        plan_commit(graph, mapping, WORKERS)


def test_no_worker_connected():
    graph, _ = diamond()
    with pytest.raises(cp.MappingError, match="no Worker is connected"):
        plan_commit(graph, {"w1": ["a"]}, [])


def test_unpicklable_node_is_named():
    import threading

    class Holds(cp.Node):
        def __init__(self):
            super().__init__("holder")
            self.lock = threading.Lock()

    graph = cp.Graph()
    graph.add_node(Holds())
    plan = plan_commit(graph, {"w1": ["holder"]}, WORKERS)
    with pytest.raises(cp.GraphError, match="'holder' cannot be sent.*prep"):
        plan.node_specs("w1")


def test_edges_between_hosts_use_the_remote_sockets():
    graph, (a, b, c, d) = diamond()
    workers = [WorkerRef("w1", "id-1", "laptop"), WorkerRef("w2", "id-2", "lab-pc")]
    plan = plan_commit(graph, {"w1": ["a", "b"], "w2": ["c", "d"]}, workers)
    specs = {s["name"]: s for s in plan.node_specs("w1")}
    assert [(c["name"], c["mode"]) for c in specs["a"]["consumers"]] == [("b", "lossless"), ("c", "lossless-remote")]
    assert [(c["name"], c["mode"]) for c in specs["b"]["consumers"]] == [("d", "lossless-remote")]
    addresses = {n: {m: f"{n}->{m}" for m in "abcd"} for n in "abcd"}
    wiring = plan.connections(addresses)
    # across hosts the consumer pins its producer's public key; on one host the folder guards it
    assert wiring["w2"]["inputs"]["c"] == [{"producer": "a", "address": "a->c", "latest_only": False,
                                            "server_key": plan.keys["a"].public}]
    assert wiring["w2"]["inputs"]["d"][1] == {"producer": "c", "address": "c->d", "latest_only": True,
                                               "server_key": None}


def test_each_node_gets_its_own_secret_key_and_only_public_keys_of_others():
    graph, _ = diamond()
    workers = [WorkerRef("w1", "id-1", "laptop"), WorkerRef("w2", "id-2", "lab-pc")]
    plan = plan_commit(graph, {"w1": ["a", "b"], "w2": ["c", "d"]}, workers)
    again = plan_commit(graph, {"w1": ["a", "b"], "w2": ["c", "d"]}, workers)
    assert len({k.secret for k in plan.keys.values()} | {k.secret for k in again.keys.values()}) == 8  # fresh keys
    for worker in ("w1", "w2"):
        for spec in plan.node_specs(worker):
            secrets = {k.secret for n, k in plan.keys.items() if n != spec["name"]}
            assert spec["keypair"]["secret"] == plan.keys[spec["name"]].secret
            assert not any(secret in str(spec) for secret in secrets)
    assert "secret" not in repr(plan.keys["a"]).replace("secret=...", "")
