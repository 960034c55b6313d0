-- Setup data: teams, staff, clients, care relationships, consents, and the
-- foreign key to the host system's client table.
BEGIN;
SELECT plan(34);

SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa') AS team \gset
SELECT throws_ok($$SELECT ips.add_team('Vaasa IPS', 'Pohjanmaa')$$, '23505',
                 'team "Vaasa IPS" exists already in region "Pohjanmaa"', 'team names are unique in a region');
SELECT throws_ok($$SELECT ips.add_team(NULL, 'Pohjanmaa')$$, '22004', 'name must not be NULL', 'a team needs a name');
SELECT throws_ok($$SELECT ips.add_team(' ', 'Pohjanmaa')$$, '22023', NULL, 'a blank name is refused');

-- staff
SELECT ok(ips.add_staff(:team, 'Anna', 'specialist', 0.8, NULL, 0.9, 30) > 0, 'add a part-time specialist');
SELECT is((SELECT (fte, employment_share, weekly_hours)::text FROM ips.staff WHERE display_name = 'Anna'),
          '(0.8,0.9,30)', 'fte, employment share and weekly hours are kept');
SELECT ips.add_staff(:team, 'Bertil', 'specialist') AS bertil \gset
SELECT is((SELECT (fte, employment_share, weekly_hours)::text FROM ips.staff WHERE staff_id = :bertil),
          '(1.0,1.0,37.5)', 'defaults 1.0, 1.0, 37.5');
SELECT throws_ok(format($$SELECT ips.add_staff(%s, 'X', 'janitor')$$, :team), '22023', 'unknown staff role "janitor"',
                 'unknown role');
SELECT throws_ok(format($$SELECT ips.add_staff(%s, 'X', 'specialist', 1.5)$$, :team), '22003', 'fte 1.5 is out of range',
                 'fte above 1');
SELECT throws_ok(format($$SELECT ips.add_staff(%s, 'X', 'specialist', 0)$$, :team), '22003', NULL, 'fte 0');
SELECT throws_ok(format($$SELECT ips.add_staff(%s, 'X', 'specialist', 1, NULL, 1.2)$$, :team), '22003', NULL,
                 'employment share above 1');
SELECT throws_ok(format($$SELECT ips.add_staff(%s, 'X', 'specialist', 1, NULL, 1, -3)$$, :team), '22003', NULL,
                 'negative weekly hours');
SELECT throws_ok($$SELECT ips.add_staff(999999, 'X', 'specialist')$$, 'P0002', 'no team with id 999999', 'unknown team');
SELECT throws_ok(format($$SELECT ips.add_staff(%s, 'X', 'specialist', 1, 'no_such_role_xyz')$$, :team), '42704',
                 'role "no_such_role_xyz" does not exist', 'db_role must exist');
SELECT is((SELECT count(*) FROM ips.staff), 2::bigint, 'refused staff wrote nothing');

-- clients: pseudonymous
SELECT ips.add_client('ehr-1001', 1988, 'Vaasa') AS c1 \gset
SELECT is(ips.add_client('ehr-1001') || ' ' || (SELECT count(*) FROM ips.client WHERE host_ref = 'ehr-1001'), :c1 || ' 1',
          'host_ref is unique: a registered key gives its client (no 23505, an oracle: docs/security.md)');
SELECT throws_ok($$SELECT ips.add_client('')$$, '22023', NULL, 'empty host_ref');
SELECT throws_ok($$SELECT ips.add_client('ehr-2', 1850)$$, '22003', 'birth year 1850 is out of range', 'birth year range');
SELECT hasnt_column('ips', 'client', 'name', 'no names are stored');
SELECT hasnt_column('ips', 'client', 'personal_identity_code', 'no identity codes are stored');

-- care relationships
SELECT ips.start_care_relationship(:c1, 'Vaasa psychiatric outpatient clinic', '2025-01-01') AS cr \gset
SELECT throws_ok(format($$SELECT ips.end_care_relationship(%s, '2024-12-31')$$, :cr), '22023', NULL,
                 'a care relationship cannot end before it starts');
SELECT lives_ok(format($$SELECT ips.end_care_relationship(%s, '2025-06-30')$$, :cr), 'end a care relationship');
SELECT throws_ok(format($$SELECT ips.end_care_relationship(%s, '2025-07-30')$$, :cr), '55000', NULL, 'it ends once');
SELECT throws_ok($$SELECT ips.end_care_relationship(999999, '2025-07-30')$$, 'P0002', NULL, 'unknown care relationship');
SELECT throws_ok($$SELECT ips.start_care_relationship(999999, 'X', '2025-01-01')$$, 'P0002', 'no client with id 999999',
                 'unknown client');

-- consents
SELECT ok(ips.give_consent(:c1, 'share_with_care', '2025-01-01') > 0, 'give consent');
SELECT throws_ok(format($$SELECT ips.give_consent(%s, 'share_with_care', '2025-01-02')$$, :c1), '23505', NULL,
                 'one active consent per scope');
SELECT throws_ok(format($$SELECT ips.give_consent(%s, 'share_with_everyone', '2025-01-02')$$, :c1), '22023',
                 'unknown consent scope "share_with_everyone"', 'unknown scope');
SELECT lives_ok(format($$SELECT ips.withdraw_consent(%s, 'share_with_care', '2025-03-01')$$, :c1), 'withdraw consent');
SELECT throws_ok(format($$SELECT ips.withdraw_consent(%s, 'share_with_care', '2025-03-02')$$, :c1), 'P0002', NULL,
                 'nothing left to withdraw');
SELECT ok(ips.give_consent(:c1, 'share_with_care', '2025-04-01') > 0, 'consent may be given again');

-- the host system's client table, tied by a real foreign key (here: integer keys, as GNU Health or Odoo)
CREATE TABLE public.host_patient (id integer PRIMARY KEY, name text);
INSERT INTO public.host_patient VALUES (1001, 'Host owns the name'), (1002, 'Another');
UPDATE ips.client SET host_ref = '1001' WHERE client_id = :c1;
SELECT lives_ok($$SELECT ips.attach_host_table('public.host_patient', 'id')$$, 'attach the host table');
SELECT ok(ips.add_client('1002') > 0, 'a client that exists in the host table');
SELECT throws_ok($$SELECT ips.add_client('1003')$$, '23503', NULL, 'a client missing from the host table is refused by the FK');
SELECT throws_ok($$DELETE FROM public.host_patient WHERE id = 1001$$, '23503', NULL,
                 'the host cannot delete a client that ips refers to');

SELECT * FROM finish();
ROLLBACK;
