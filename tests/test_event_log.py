"""The Dagster instance's event log (pipelines/event_log.py): Dagster's SQLite storage, its files kept open."""

import os
import sqlite3
from pathlib import Path

import dagster as dg
import pytest

import pipelines.event_log as event_log
from pipelines.cli import DAGSTER_YAML, EVENT_LOG_YAML, ensure_dagster_home
from pipelines.event_log import PooledSqliteEventLogStorage


@dg.asset
def first():
    return 1


@dg.asset
def second(first):
    return first + 1


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))  # set back after the test
    ensure_dagster_home(tmp_path)  # the CLI's dagster.yaml
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_the_cli_s_instance_stores_events_in_files_it_keeps_open(instance, monkeypatch):
    opened = []
    create_engine = event_log.db.create_engine
    monkeypatch.setattr(event_log.db, "create_engine", lambda *a, **k: opened.append(a[0]) or create_engine(*a, **k))
    assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)

    runs = [dg.materialize([first, second], instance=instance) for _ in range(2)]

    assert all(run.success for run in runs)
    for run in runs:
        types = [entry.dagster_event_type for entry in instance.all_logs(run.run_id) if entry.is_dagster_event]
        assert types.count(dg.DagsterEventType.ASSET_MATERIALIZATION) == 2
        assert types[-1] == dg.DagsterEventType.RUN_SUCCESS
    latest = instance.get_latest_materialization_event(dg.AssetKey("second"))  # from the index across runs
    assert latest.run_id == runs[1].run_id
    # ~25 events a run, each written to the run's file, asset events to the index as well. The index's engine was
    # made when the instance started; each run's file gets one to create its tables and one that stays open
    run_files = {instance.event_log_storage.conn_string_for_shard(run.run_id) for run in runs}
    assert sorted(opened) == sorted([*run_files, *run_files])


def test_a_write_to_a_run_s_log_reaches_the_run_s_file_which_the_ui_watches(instance):
    run = dg.materialize([first], instance=instance)
    path = instance.event_log_storage.path_for_shard(run.run_id)
    # immutable=1 reads the file alone, without its write-ahead log: what the file itself holds
    with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as con:
        stored = con.execute("SELECT dagster_event_type FROM event_logs ORDER BY id DESC LIMIT 1").fetchone()
    assert stored == (dg.DagsterEventType.RUN_SUCCESS.value,)


def test_closing_the_instance_closes_the_files_and_leaves_no_write_ahead_log(instance):
    dg.materialize([first], instance=instance)
    folder = Path(instance.event_log_storage.path_for_shard("index")).parent
    instance.event_log_storage.dispose()
    assert sorted(p.suffix for p in Path(folder).iterdir()) == [".db", ".db"]


def test_an_earlier_dagster_yaml_gets_the_event_log_once_and_one_that_chooses_a_storage_is_kept(tmp_path,
                                                                                                   monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    earlier = DAGSTER_YAML.replace(EVENT_LOG_YAML, "")
    (home / "dagster.yaml").write_text(earlier, encoding="utf-8")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    ensure_dagster_home(tmp_path)
    ensure_dagster_home(tmp_path)
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == earlier + "\n" + EVENT_LOG_YAML

    own = "storage:\n  postgres:\n    postgres_url: postgresql://localhost/dagster\n"
    (home / "dagster.yaml").write_text(own, encoding="utf-8")
    ensure_dagster_home(tmp_path)
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == own


def test_a_forked_process_opens_the_files_again_and_leaves_the_parent_s_connections_alone(instance):
    storage = instance.event_log_storage
    run = dg.materialize([first], instance=instance)
    parent_engine = storage._engine(run.run_id)
    pid = os.fork()
    if pid == 0:  # the child: its own engine, and the parent's connection untouched
        ok = False
        try:
            ok = storage._engine(run.run_id) is not parent_engine and len(instance.all_logs(run.run_id)) > 0
        except BaseException:  # noqa: BLE001 - the child reports by its exit code only
            pass
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert storage._engine(run.run_id) is parent_engine
    assert instance.all_logs(run.run_id)[-1].dagster_event_type == dg.DagsterEventType.RUN_SUCCESS
