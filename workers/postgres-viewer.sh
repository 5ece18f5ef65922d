#!/bin/sh
# docker-compose.yml's postgres runs this once, when it initialises its volume: the read-only
# role `study dashboard` reads with (study/viewer.sql, which `study dashboard --viewer-sql`
# prints for an existing server). The password stays in the environment (STUDY_VIEWER_PASSWORD).
set -eu
psql --no-psqlrc --quiet --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v viewer="${STUDY_VIEWER_USER:-study_viewer}" -v owner="$POSTGRES_USER" \
    -f "${STUDY_VIEWER_SQL:-/study-viewer.sql}"
