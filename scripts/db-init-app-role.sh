#!/bin/sh
# The application's database role, made once when the PostgreSQL volume is first
# initialized (the postgres image runs /docker-entrypoint-initdb.d/ then). It owns
# nothing: the migrate step's `manage.py grant_app_role` gives it what the product
# needs, and on the ledger that is SELECT and INSERT only.
# On a volume made before this script, create the role once by hand:
#   docker compose exec db psql -U leadrecord -c "CREATE ROLE leadrecord_app LOGIN PASSWORD '...'"
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_user="$APP_DB_USER" -v app_password="$APP_DB_PASSWORD" <<'SQL'
CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password';
SQL
