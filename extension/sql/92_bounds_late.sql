-- Bounded input (issue 13), for the tables that 90_security.sql makes: see 87_bounds.sql.
-- (Only constraints and triggers here: objects that need grants belong before 90_.)

ALTER TABLE ips.consent_refusal
    ADD CONSTRAINT consent_refusal_dates_finite CHECK (isfinite(refused_on));
CREATE TRIGGER consent_refusal_bounds BEFORE INSERT OR UPDATE ON ips.consent_refusal
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('refused_on', 'recorded_at');
CREATE TRIGGER client_intake_bounds BEFORE INSERT OR UPDATE ON ips.client_intake
    FOR EACH ROW EXECUTE FUNCTION ips.bounds_guard('registered_at');
