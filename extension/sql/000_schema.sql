-- The schema is the extension's own: the install script creates it (ips.control
-- names pg_catalog as the extension's schema, as plpgsql does), so that
-- DROP EXTENSION ips removes it with everything in it, and pg_dump leaves it
-- to CREATE EXTENSION.  Versions 1.0 and 1.1 had it made by PostgreSQL from
-- their control files (extension/ips--1.0.control, ips--1.1.control); the
-- update to 1.2 adopts it (extension/ips--1.1--1.2.sql).
CREATE SCHEMA ips;
COMMENT ON SCHEMA ips IS 'IPS (Individual Placement and Support): episodes, contact rules, fidelity and outcomes (extension ips).';
