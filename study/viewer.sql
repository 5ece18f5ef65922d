-- The read-only role optuna-dashboard reads the study tables with (`study dashboard`). Run once,
-- as an administrator, in the study's database, with psql: the variables viewer (the role) and
-- owner (the role the workers connect as) set, and the role's password in the environment.
\set ON_ERROR_STOP on
\getenv viewer_password STUDY_VIEWER_PASSWORD
\if :{?viewer_password}
SELECT :'viewer_password' = '' AS no_password \gset
\else
\set no_password true
\endif
\if :no_password
\warn 'STUDY_VIEWER_PASSWORD is not set: export the role''s password there and run this again'
stop_here_without_a_password;
\endif
CREATE ROLE :"viewer" LOGIN PASSWORD :'viewer_password';
GRANT CONNECT ON DATABASE :"DBNAME" TO :"viewer";
GRANT USAGE ON SCHEMA public TO :"viewer";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"viewer";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"viewer";
