import pytest

from tests.builders import build


@pytest.fixture(scope="module")
def warehouse_for(tmp_path_factory):
    """warehouse_for(claims, contracts, policy=..., as_of=...) -> read-only connection, built once per options."""
    built = {}

    def _build(claims, contracts=(), **options):
        key = (id(claims), tuple(sorted(options.items())))
        if key not in built:
            built[key] = build(tmp_path_factory.mktemp("wh"), claims, list(contracts), **options)
        return built[key]

    yield _build
    for con in built.values():
        con.close()
