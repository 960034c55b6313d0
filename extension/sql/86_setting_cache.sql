-- Settings kept across transactions (issue 14, the ledger's speed targets): the
-- guards read the region's time zone and the earliest fact date in every
-- transaction; extension/lookup.c keeps them, and every change to ips.setting
-- (any statement, any role, also with session_replication_role = replica)
-- tells every session to read them again.
CREATE FUNCTION ips.setting_changed() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_setting_changed' LANGUAGE C;
COMMENT ON FUNCTION ips.setting_changed() IS
    'Trigger: after every statement that changes ips.setting, every session forgets the settings it keeps across transactions (the guards'' time zone and earliest fact date).';
CREATE TRIGGER setting_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ips.setting
    FOR EACH STATEMENT EXECUTE FUNCTION ips.setting_changed();
ALTER TABLE ips.setting ENABLE ALWAYS TRIGGER setting_changed;

-- Staff days kept across transactions (the same way): the staff-day guard
-- (extension/staff_days.c) keeps each person's days on the team from one
-- transaction to the next; every change to ips.staff tells every session to
-- read them again.
CREATE FUNCTION ips.staff_changed() RETURNS trigger AS 'MODULE_PATHNAME', 'ips_staff_changed' LANGUAGE C;
COMMENT ON FUNCTION ips.staff_changed() IS
    'Trigger: after every statement that changes ips.staff, every session forgets the staff members'' days on the team that the staff-day guard keeps across transactions.';
CREATE TRIGGER staff_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ips.staff
    FOR EACH STATEMENT EXECUTE FUNCTION ips.staff_changed();
ALTER TABLE ips.staff ENABLE ALWAYS TRIGGER staff_changed;
