# IpsRegion: the synthetic activity that the replication and standby TAP
# tests load through the public functions: two teams, three specialists,
# clients over 2025 (care relationships, consents, referrals, transitions with
# reasons, contacts, employer contacts, jobs with titles, studies, holds,
# closures, team meetings).
package IpsRegion;
use strict;
use warnings;
use Exporter 'import';
our @EXPORT = qw(region_setup activity);

my $setup = q{
SET TimeZone = 'Europe/Helsinki';
SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa');
SELECT ips.add_team('Kokkola IPS', 'Keski-Pohjanmaa');
SELECT ips.add_staff(1, 'Anna Virtanen', 'specialist', 1.0, NULL, 0.95, 37.5);
SELECT ips.add_staff(2, 'Bertil Nyström', 'specialist', 0.5);
SELECT ips.add_staff(1, 'Cecilia Koski', 'specialist', 0.8, NULL, 1.0, 30);
SELECT ips.add_staff(1, 'Dr. Heikkinen', 'clinician', 1.0, NULL, 1.0, 37.5, 'Vaasa psychiatric outpatient clinic');
SELECT ips.add_employer('Prisma Vaasa', '0112038-9', 'retail');
SELECT ips.add_employer('Wärtsilä', '0737546-2', 'manufacturing');
SELECT ips.add_employer('Kahvila Onni', NULL, 'food service');
UPDATE ips.setting SET value = '4' WHERE name = 'disengaged_min_outreach_attempts';
};
my $activity = q{
SET TimeZone = 'Europe/Helsinki';
DO $$
DECLARE
    c bigint; e bigint; j bigint; sp bigint; t bigint; d date;
BEGIN
    FOR i IN %FROM%..%TO% LOOP
        t := 1 + i % 2;
        sp := CASE WHEN t = 2 THEN 2 WHEN i % 4 = 1 THEN 3 ELSE 1 END;
        d := date '2025-01-06' + (i * 9) % 120;
        c := ips.add_client('ehr-' || i, 1970 + i, 'Vaasa');
        PERFORM ips.start_care_relationship(c, 'Vaasa psychiatric outpatient clinic', d - 30);
        PERFORM ips.give_consent(c, 'share_with_care', d - 30);
        e := ips.refer(c, t, d, 'psychiatric outpatient clinic, Dr. H');
        PERFORM ips.assign_specialist(e, sp, d + 1);
        IF to_regprocedure('ips.set_out_of_work_at_entry(bigint,boolean)') IS NOT NULL THEN
            EXECUTE 'SELECT ips.set_out_of_work_at_entry($1, $2)' USING e, i % 3 <> 1;
        END IF;
        IF i % 11 = 0 THEN
            PERFORM ips.transition(e, 'closed', (d + 20)::timestamptz + time '12:00', 'never_engaged');
            CONTINUE;
        END IF;
        PERFORM ips.transition(e, 'engaged', (d + 2)::timestamptz + time '10:00', 'first meeting went well');
        PERFORM ips.record_contact(e, sp, (d + 2)::timestamptz + time '10:00', 'client', 'in_person', 'community', 60);
        PERFORM ips.record_contact(e, sp, (d + 9)::timestamptz + time '10:00', 'client', 'phone', 'office', 20);
        PERFORM ips.record_contact(e, sp, (d + 12)::timestamptz + time '14:00', 'benefits_counseling', 'in_person', 'office', 45);
        PERFORM ips.complete_career_profile(e, d + 20);
        PERFORM ips.transition(e, 'job_search', (d + 21)::timestamptz + time '09:00', 'profile done, wants retail work');
        PERFORM ips.record_employer_contact(sp, 1 + i % 3, (d + 25)::timestamptz + time '13:00', true, e);
        PERFORM ips.record_employer_contact(sp, 1 + (i + 1) % 3, (d + 26)::timestamptz + time '13:00', true, NULL);
        PERFORM ips.record_contact(e, sp, (d + 30)::timestamptz + time '10:00', 'client', 'in_person', 'community', 50);
        IF i % 3 = 0 THEN
            PERFORM ips.record_contact(e, sp, (d + 40)::timestamptz + time '10:00', 'client', 'in_person', 'community', 30);
            j := ips.start_job(e, 1 + i % 3, d + 45, CASE WHEN i % 6 = 0 THEN 'competitive' ELSE 'work_trial' END,
                               CASE WHEN i % 2 = 0 THEN '5223' ELSE '9112' END, 20, 'Shop assistant at the Vaasa store');
            PERFORM ips.record_contact(e, sp, (d + 47)::timestamptz + time '10:00', 'client', 'in_person', 'community', 30);
            PERFORM ips.record_contact(e, sp, (d + 52)::timestamptz + time '10:00', 'client', 'in_person', 'community', 30);
            IF i % 2 = 0 THEN
                PERFORM ips.end_job(j, d + 120, 'conflict with the shift manager');
            END IF;
        ELSIF i % 5 = 0 THEN
            PERFORM ips.start_studies(e, d + 50, 'Vocational qualification in business, Vamia');
        ELSIF i % 7 = 0 THEN
            PERFORM ips.transition(e, 'on_hold', (d + 50)::timestamptz + time '09:00', 'hospital stay');
        ELSIF i % 4 = 0 THEN
            PERFORM ips.transition(e, 'closed', (d + 60)::timestamptz + time '09:00', 'client_choice');
        END IF;
    END LOOP;
END $$;
SELECT ips.record_team_meeting(s, m::date)
  FROM (VALUES (1), (2), (3)) AS x(s), generate_series(date '2025-01-08', date '2025-06-30', '7 days') AS m;
};
sub activity { my ($from, $to) = @_; my $s = $activity; $s =~ s/%FROM%/$from/; $s =~ s/%TO%/$to/; return $s; }

# The teams, staff, employers and a changed setting.
sub region_setup { return $setup; }

1;
