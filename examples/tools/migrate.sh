#!/bin/sh
# An Alembic-style migration tool, small enough to read, for the examples: the migrations are
# migrations/NNNN_name.up.sql and NNNN_name.down.sql in the working directory (the release's
# checkout), and the revision in effect is in table alembic_version, as with Alembic.
#
#   migrate.sh upgrade head     apply every migration after the current revision
#   migrate.sh downgrade -1     revert the current revision
#   migrate.sh current          print the current revision
#
# Each step runs in one transaction with its version bump. Needs psql and DATABASE_URL.
set -eu

q() { psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qAt "$@"; }

q -c "CREATE TABLE IF NOT EXISTS alembic_version (version_num text PRIMARY KEY)"
current=$(q -c "SELECT version_num FROM alembic_version")

revisions() { for f in migrations/*.up.sql; do basename "$f" .up.sql; done | sort; }

case "${1:-} ${2:-}" in
"upgrade head")
    applied=0
    for rev in $(revisions); do
        if [ -n "$current" ] && [ "$(expr "x$rev" \> "x$current")" != 1 ]; then
            continue
        fi
        echo "Running upgrade ${current:-base} -> $rev"
        q -1 -f "migrations/$rev.up.sql" \
            -c "DELETE FROM alembic_version" \
            -c "INSERT INTO alembic_version VALUES ('$rev')"
        current=$rev
        applied=$((applied + 1))
    done
    echo "at $current ($applied applied)"
    ;;
"downgrade -1")
    if [ -z "$current" ]; then
        echo "nothing to downgrade: no revision is applied" >&2
        exit 1
    fi
    previous=""
    for rev in $(revisions); do
        [ "$rev" = "$current" ] && break
        previous=$rev
    done
    echo "Running downgrade $current -> ${previous:-base}"
    if [ -n "$previous" ]; then
        bump="INSERT INTO alembic_version VALUES ('$previous')"
    else
        bump="SELECT 1"
    fi
    q -1 -f "migrations/$current.down.sql" -c "DELETE FROM alembic_version" -c "$bump"
    ;;
"current "*)
    echo "${current:-base}"
    ;;
*)
    echo "usage: migrate.sh upgrade head | downgrade -1 | current" >&2
    exit 2
    ;;
esac
