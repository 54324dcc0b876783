"""The schema's migrations: a fresh database gets them all, an older one is upgraded in place, data kept."""

from __future__ import annotations

import pytest
from crm_support import make_repo

from voicebot.crm.schema import (
    MIGRATION_NAMES, MIGRATIONS, SCHEMA_VERSION, SchemaError, connect, migrate, schema_version,
)


def test_a_fresh_database_gets_every_migration(tmp_path):
    repo = make_repo(tmp_path / "sub" / "dir" / "crm.db")  # folders are created
    assert schema_version(repo.db) == SCHEMA_VERSION == len(MIGRATION_NAMES) >= 4
    assert [m.name for m in MIGRATIONS.applied(repo.db)] == MIGRATION_NAMES
    assert {"customers", "orders", "bookings", "leads", "callbacks", "interactions"} <= set(repo.db.table_names())
    assert repo.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert repo.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_an_old_database_is_upgraded_in_place(tmp_path):
    path = tmp_path / "crm.db"
    old = connect(path)
    assert migrate(old, stop_before="m003_leads_callbacks_interactions") == 2
    assert "leads" not in old.table_names() and "postcode" not in old["customers"].columns_dict
    old["customers"].insert({"name": "Alice Johnson", "created_at": "2024-01-05T10:00:00"})
    old["customer_phones"].insert({"customer_id": 1, "e164": "+15550102030", "label": "mobile"})
    old["orders"].insert({"number": "10001", "customer_id": 1, "status": "delivered", "placed_at": "2024-02-01",
                          "total_cents": 2499, "currency": "USD"})
    first_applied = [m.applied_at for m in MIGRATIONS.applied(old)]
    old.close()

    repo = make_repo(path)
    assert schema_version(repo.db) == SCHEMA_VERSION
    assert [m.applied_at for m in MIGRATIONS.applied(repo.db)][:2] == first_applied  # the old ones did not run again
    assert {"date_of_birth", "postcode"} <= set(repo.db["customers"].columns_dict)
    alice = repo.find_customer_by_phone("555-010-2030")
    assert alice.name == "Alice Johnson" and repo.get_order("10001", alice.id).status == "delivered"
    assert repo.verification_record(alice.id).postcode is None
    assert repo.create_lead("Dana", "chairs").id == 1  # the new tables work
    repo.close()
    again = make_repo(path)  # opening an up-to-date database changes nothing
    assert len(MIGRATIONS.applied(again.db)) == SCHEMA_VERSION


def test_a_database_from_a_newer_voicebot_is_refused(tmp_path):
    repo = make_repo(tmp_path / "crm.db")
    repo.db["_sqlite_migrations"].insert({"migration_set": "voicebot_crm", "name": "m999_from_the_future",
                                           "applied_at": "2030-01-01"})
    with pytest.raises(SchemaError, match="m999_from_the_future"):
        migrate(repo.db)
