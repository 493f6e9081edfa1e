-- Run once by the postgres image when it creates the `payments` database (compose mounts
-- it into /docker-entrypoint-initdb.d). pg_stat_statements is preloaded by the server's
-- command line (compose.yaml); the runbook's slow-query check reads its view.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
