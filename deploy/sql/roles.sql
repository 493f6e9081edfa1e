-- FlowPay's database roles (docs/operations.md, "Database roles").
--
-- flowpay_owner owns the schema and every table and runs the migrations, nothing else.
-- flowpay_app is what web, worker and beat connect as: it owns no table and is not a
-- superuser, so it cannot disable the audit log's append-only triggers; on the audit tables
-- it may only read and insert.
--
-- As a superuser, connected to the FlowPay database (every statement can run again):
--   psql -v ON_ERROR_STOP=1 -v owner_password="..." -v app_password="..." -d payments -f deploy/sql/roles.sql
-- Run it again (the passwords may be left out then) after a release whose migrations add
-- tables: part 2 grants them to the application and keeps the audit tables append-only.
-- Tables created earlier by another role: hand them over first, e.g.
--   REASSIGN OWNED BY <previous owner> TO flowpay_owner;   (not for a superuser: ALTER TABLE … OWNER TO)

-- --- Part 1: the roles ------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'flowpay_owner') THEN
        CREATE ROLE flowpay_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'flowpay_app') THEN
        CREATE ROLE flowpay_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT;
    END IF;
END
$$;
\if :{?owner_password}
ALTER ROLE flowpay_owner PASSWORD :'owner_password';
\endif
\if :{?app_password}
ALTER ROLE flowpay_app PASSWORD :'app_password';
\endif

-- FlowPay's tables live in the schema `payments` (docs/operations.md, "PostgreSQL"): the owner
-- creates them there (migrations); nobody else may create anything, there or in public.
CREATE SCHEMA IF NOT EXISTS payments AUTHORIZATION flowpay_owner;
ALTER SCHEMA payments OWNER TO flowpay_owner;
ALTER SCHEMA public OWNER TO flowpay_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE CREATE ON SCHEMA payments FROM PUBLIC;
GRANT USAGE ON SCHEMA payments TO flowpay_app;
GRANT USAGE ON SCHEMA public TO flowpay_app;
-- The application's connections set this search_path themselves; psql sessions of these roles too.
ALTER ROLE flowpay_owner SET search_path = payments, public;
ALTER ROLE flowpay_app SET search_path = payments, public;

-- Tables and sequences the owner creates from now on: read and write for the application.
ALTER DEFAULT PRIVILEGES FOR ROLE flowpay_owner IN SCHEMA payments
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO flowpay_app;
ALTER DEFAULT PRIVILEGES FOR ROLE flowpay_owner IN SCHEMA payments
    GRANT USAGE, SELECT ON SEQUENCES TO flowpay_app;

-- --- Part 2: privileges on the tables that exist (after migrate) ---------------------------
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA payments TO flowpay_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA payments TO flowpay_app;
-- The audit log: read and append only.
DO $$
BEGIN
    IF to_regclass('payments.audit_entry') IS NOT NULL THEN
        REVOKE UPDATE, DELETE, TRUNCATE ON payments.audit_entry FROM flowpay_app;
    END IF;
    IF to_regclass('payments.audit_seal') IS NOT NULL THEN
        REVOKE UPDATE, DELETE, TRUNCATE ON payments.audit_seal FROM flowpay_app;
    END IF;
END
$$;
