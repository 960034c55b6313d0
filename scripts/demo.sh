#!/usr/bin/env bash
# make demo: build, start a throw-away cluster, load a synthetic region
# (ipsctl generate | ipsctl import: a few teams, about 100 clients, a year of
# activity, seed 42, the same every time) through the public functions, and
# print what a team leader wants to see first: caseloads, episodes per state,
# the alerts with each client's key and specialist, every team's review sheet
# (text, and HTML to print into demo-out/), outcomes.  LANG=fi|sv|en (default en).
set -uo pipefail
. "$(dirname "$0")/cluster.sh"
set -e
# the build's and the cluster's messages (in English, for developers) are shown only if they fail
setup_log=$(mktemp /tmp/ips-demo-setup.XXXXXX)
{ ips_setup; } 2>"$setup_log" || { cat "$setup_log" >&2; rm -f "$setup_log"; exit 1; }
rm -f "$setup_log"

case "${LANG:-en}" in
	fi*) lang=fi ;;
	sv*) lang=sv ;;
	*) lang=en ;;
esac
export PGDATABASE=ips_demo
psql -qX -d postgres -c "CREATE DATABASE ips_demo" >/dev/null
psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION ips" >/dev/null

seed=${DEMO_SEED:-42}
ipsctl generate --clients 100 --seed "$seed" --start "${DEMO_END:-2026-10-31}" >"$IPS_WORK/region.json"
ipsctl import -q "$IPS_WORK/region.json"
# what was loaded, in the chosen language
read -r n_team n_staff n_client n_ep n_contact n_emp n_job <<<"$(psql -XAt -F ' ' -c "SELECT
	(SELECT count(*) FROM ips.team), (SELECT count(*) FROM ips.staff), (SELECT count(*) FROM ips.client),
	(SELECT count(*) FROM ips.episode), (SELECT count(*) FROM ips.contact),
	(SELECT count(*) FROM ips.employer_contact), (SELECT count(*) FROM ips.job)")"
case $lang in
	fi) echo "Synteettinen alue ladattu (ipsctl generate --seed $seed | ipsctl import): $n_team tiimiä, $n_staff työntekijää, $n_client asiakasta, $n_ep jaksoa, $n_contact yhteydenottoa, $n_emp työnantajatapaamista, $n_job työsuhdetta." ;;
	sv) echo "Syntetiskt område inläst (ipsctl generate --seed $seed | ipsctl import): $n_team team, $n_staff anställda, $n_client klienter, $n_ep perioder, $n_contact kontakter, $n_emp arbetsgivarmöten, $n_job anställningar." ;;
	*)  echo "A synthetic region loaded (ipsctl generate --seed $seed | ipsctl import): $n_team teams, $n_staff staff, $n_client clients, $n_ep episodes, $n_contact contacts, $n_emp employer contacts, $n_job jobs." ;;
esac

# headers in the chosen language
case $lang in
	fi) h_case="Asiakasmäärä työhönvalmentajittain"; h_state="Jaksot tiloittain"; h_team="tiimi"; h_spec="työhönvalmentaja"
	    h_act="aktiivisia asiakkaita"; h_fte="htv"; h_per="asiakasta / htv"; h_st="tila"; h_n="jaksoja"
	    h_alerts="Erääntyneet ja erääntyvät yhteydenotot"; h_rule="sääntö"; h_sev="vakavuus"; h_na="hälytyksiä"
	    h_out="Tulokset neljännesvuosittain" ;;
	sv) h_case="Klienter per arbetstränare"; h_state="Perioder per tillstånd"; h_team="team"; h_spec="arbetstränare"
	    h_act="aktiva klienter"; h_fte="årsverken"; h_per="klienter / årsverke"; h_st="tillstånd"; h_n="perioder"
	    h_alerts="Förfallna och förfallande kontakter"; h_rule="regel"; h_sev="allvarlighet"; h_na="larm"
	    h_out="Resultat per kvartal" ;;
	*)  h_case="Caseload per employment specialist"; h_state="Episodes per state"; h_team="team"; h_spec="specialist"
	    h_act="active clients"; h_fte="fte"; h_per="clients per fte"; h_st="state"; h_n="episodes"
	    h_alerts="Contacts overdue and due"; h_rule="rule"; h_sev="severity"; h_na="alerts"
	    h_out="Outcomes per quarter" ;;
esac

q() { psql -X -v ON_ERROR_STOP=1 -v lang="$lang" -P footer=off "$@"; }
# the review has one name, the label the report prints (IPS-laatuarviointi / IPS-kvalitetsbedömning)
h_fid=$(psql -XAtc "SELECT ips.label('fidelity_title', '$lang')")

echo; echo "== $h_case"
q -c "SELECT t.name AS \"$h_team\", c.display_name AS \"$h_spec\", c.active_clients AS \"$h_act\",
             ips.number_text(c.fte, '$lang') AS \"$h_fte\", ips.number_text(c.clients_per_fte, '$lang') AS \"$h_per\"
        FROM ips.caseload c JOIN ips.team t USING (team_id)
       ORDER BY t.name, c.display_name"

echo "== $h_state"
q -c "SELECT t.name AS \"$h_team\", ips.label(v.code, '$lang') AS \"$h_st\", count(e.episode_id) AS \"$h_n\"
        FROM ips.team t CROSS JOIN ips.vocabulary v
        LEFT JOIN ips.episode e ON e.team_id = t.team_id AND e.state = v.code
       WHERE v.category = 'state'
       GROUP BY t.name, v.code, v.ordinal ORDER BY t.name, v.ordinal"

# The day the demo is "as of": the synthetic history ends on DEMO_END, and the
# alerts are read as on the day of its latest recorded state change (read on
# the real today, a year-old history would be nothing but overdue alerts).
as_of=$(psql -XAtc "SELECT max(state_since)::date FROM ips.episode")
case $lang in
	fi) echo "Tilanne päivänä $as_of: synteettisen aineiston viimeisin kirjattu tilamuutos (aineisto päättyy siihen; tämän päivän mukaan kaikki olisi myöhässä)." ;;
	sv) echo "Läget den $as_of: den senast registrerade tillståndsändringen i de syntetiska uppgifterna (de slutar där; räknat från i dag vore allt försenat)." ;;
	*)  echo "As of $as_of: the day of the latest recorded state change in the synthetic data (the data end there; read as of today, everything would be overdue)." ;;
esac
case $lang in
	fi) h_client="asiakas"; h_due="määräpäivä"; h_late="myöhässä pv" ;;
	sv) h_client="klient"; h_due="förfallodag"; h_late="dagar försenad" ;;
	*)  h_client="client"; h_due="due on"; h_late="days overdue" ;;
esac
echo; echo "== $h_alerts ($as_of)"
q -c "SELECT t.name AS \"$h_team\", coalesce(a.specialist, '') AS \"$h_spec\", coalesce(a.client_ref, '') AS \"$h_client\",
             a.rule_label AS \"$h_rule\", a.due_on AS \"$h_due\", a.days_overdue AS \"$h_late\", a.severity_label AS \"$h_sev\"
        FROM ips.team t CROSS JOIN LATERAL ips.contact_alerts_labelled('$as_of', t.team_id, '$lang') a
       ORDER BY t.name, a.specialist, a.due_on, a.client_ref"

# Every team's review sheet for the year up to the as-of day: the text on the
# terminal, the printable HTML (ipsctl fidelity --format html) into a folder.
out=${DEMO_OUT:-$IPS_TOP/demo-out}
mkdir -p "$out"
from=$(psql -XAtc "SELECT ('$as_of'::date - interval '1 year')::date + 1")
echo "== $h_fid ($from – $as_of)"
for team in $(psql -XAtc "SELECT team_id FROM ips.team ORDER BY team_id"); do
	echo
	ipsctl fidelity --team "$team" --from "$from" --to "$as_of" --lang "$lang"
	ipsctl fidelity --team "$team" --from "$from" --to "$as_of" --lang "$lang" --format html >"$out/fidelity-team-$team.html"
done
echo
case $lang in
	fi) echo "Tulostettavat arviointilomakkeet: $out/fidelity-team-*.html" ;;
	sv) echo "Utskrivbara bedömningsblanketter: $out/fidelity-team-*.html" ;;
	*)  echo "The printable review sheets: $out/fidelity-team-*.html" ;;
esac
echo
if [ "$(psql -XAtc "SELECT to_regclass('ips.outcomes_quarterly') IS NOT NULL")" = t ]; then
	echo "== $h_out"
	# the same report, words and decimal marks as ipsctl outcomes gives a team leader
	ipsctl outcomes --lang "$lang"
	case $lang in
		fi) echo "Vertailuarvot (IPS Employment Center): 31 % vähimmäis, 41 % keskimäärin, 50 % erinomainen." ;;
		sv) echo "Jämförelsevärden (IPS Employment Center): 31 % minimum, 41 % genomsnitt, 50 % utmärkt." ;;
		*)  echo "Benchmarks (IPS Employment Center): 31 % minimal, 41 % average, 50 % excellent." ;;
	esac
fi
