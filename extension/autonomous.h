/*
 * autonomous.h
 *		Autonomous writes: one parameterised SQL statement run and committed
 *		in a transaction of its own (a dynamic background worker), so that
 *		what it writes stays when the caller's transaction rolls back.
 *		See autonomous.c and docs/access-log.md.
 */
#ifndef IPS_AUTONOMOUS_H
#define IPS_AUTONOMOUS_H

#include "postgres.h"

/* Most parameters one autonomous statement takes. */
#define IPS_AUTONOMOUS_MAX_ARGS 16

/* GUC ips.autonomous_timeout: how long (ms) a caller waits for its write. */
extern int	ips_autonomous_timeout;

/* Define the settings of the facility (called from _PG_init). */
extern void IpsAutonomousInit(void);

/*
 * Run sql with its parameters in a separate transaction, as the extension
 * owner in the caller's database, and wait until it has committed.  Raises
 * an error (nothing committed, or at most the write, never a silent loss)
 * when no worker can be started, when it does not finish within
 * ips.autonomous_timeout, or when the statement fails; "what" names the
 * write in those errors, e.g. "the access to client 101".
 */
extern void IpsAutonomousExecute(const char *sql, int nargs, const Oid *argtypes,
								 const Datum *values, const bool *nulls,
								 const char *what);

#endif							/* IPS_AUTONOMOUS_H */
