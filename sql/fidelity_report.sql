-- The fidelity review sheet a team leader prints, in Finnish, Swedish and English.
-- One specialist (1.0 FTE, 90 % on employment services, 10 h a week), week 2025-03-03 .. 03-09.
SET client_min_messages = warning;
SELECT ips.add_team('Vaasan IPS', 'Pohjanmaa') AS t \gset
SELECT ips.add_staff(:t, 'Maija', 'specialist', 1.0, NULL, 0.9, 10) AS s \gset
SELECT ips.add_employer('Kahvila Oy') AS emp \gset
SELECT ips.add_client('report-a') AS ca \gset
SELECT ips.start_care_relationship(:ca, 'psykiatria', '2024-12-01') AS cr \gset
SELECT ips.refer(:ca, :t, '2025-02-20') AS ea \gset
SELECT ips.assign_specialist(:ea, :s, '2025-02-20');
SELECT ips.transition(:ea, 'engaged', '2025-03-03 12:00+02');
SELECT ips.record_employer_contact(:s, :emp, '2025-03-05 10:00+02', true, :ea) AS x \gset
SELECT ips.record_contact(:ea, :s, '2025-03-04 10:00+02', 'client', 'in_person', 'community', 240) AS x \gset
SELECT ips.start_job(:ea, :emp, '2025-03-06', 'competitive', '5120') AS j \gset
SELECT ips.record_team_meeting(:s, '2025-03-04');
SELECT ips.open_review(:t, '2025-03-03', '2025-03-09', '2025-03-20') AS r \gset
SELECT ips.rate(:r, 'O2', 4, 'joint meeting weekly');
SELECT ips.rate(:r, 'S3', 5);
SELECT * FROM ips.fidelity_report(:t, '2025-03-03', '2025-03-09', 'fi');
SELECT * FROM ips.fidelity_report(:t, '2025-03-03', '2025-03-09', 'sv');
SELECT * FROM ips.fidelity_report(:t, '2025-03-03', '2025-03-09', 'en');
SELECT * FROM ips.fidelity_summary(:t, '2025-03-03', '2025-03-09');
-- errors
SELECT * FROM ips.fidelity_report(:t, '2025-03-03', '2025-03-09', 'de');
SELECT * FROM ips.fidelity_report(:t, '2025-03-09', '2025-03-03', 'en');
