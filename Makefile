# ips: PostgreSQL extension for IPS (Individual Placement and Support).
#
# DBAs:       make && sudo make install && psql -c 'CREATE EXTENSION ips'
#             make installcheck            (pg_regress and pgTAP against your own server)
# Developers: make demo | make test | make bench   (throw-away cluster, see README)

EXTENSION   = ips
EXTVERSION  = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" ips.control)

MODULE_big  = ips
OBJS        = $(patsubst %.c,%.o,$(sort $(wildcard extension/*.c)))

# The install script of the current version is assembled from one file per
# concern (extension/sql/NN_concern.sql, in name order).  Released versions are
# frozen, as in contrib: their install scripts (extension/ips--1.0.sql,
# extension/ips--1.1.sql) and every upgrade script extension/ips--OLD--NEW.sql are
# committed files, written by hand and never edited after their release.
# tests/t/020_upgrade.pl proves that a database updated from each released
# version equals a fresh install of the current one.
SQL_PARTS   = $(sort $(wildcard extension/sql/*.sql))
DATA_built  = extension/ips--$(EXTVERSION).sql
DATA        = $(filter-out $(DATA_built),$(wildcard extension/ips--*.sql)) $(wildcard extension/ips--*.control)

REGRESS     = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=ips --encoding=UTF8
# make installcheck runs pg_regress (installcheck-regress) and the pgTAP suite
# against the server the PG* variables name (scripts/installcheck.sh)
NO_INSTALLCHECK = 1

PG_CPPFLAGS = -I$(srcdir)/extension
# the ledger's SHA-256 calls OpenSSL itself when the server is built with it
# (extension/ledger.h): link the libcrypto the server links
SHLIB_LINK  = $(filter -lcrypto,$(LIBS))
PG_CFLAGS   = -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers
EXTRA_CLEAN = $(DATA_built)

# PG=NN picks a PostgreSQL major (Debian's layout); else the pg_config on PATH
# (make test and make demo: the major the distribution ships, see
# scripts/pg-major.sh).
ifdef PG
PG_CONFIG  ?= /usr/lib/postgresql/$(PG)/bin/pg_config
endif
PG_CONFIG  ?= pg_config
export PG
PGXS       := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifeq ($(PGXS),)
# a fresh machine: make deps, demo, test and bench install what is missing first
all install:
	@echo "ips: $(PG_CONFIG) not found: install postgresql-server-dev-NN (scripts/ensure-deps.sh build) or give PG_CONFIG=" >&2; exit 1
else
include $(PGXS)
endif

extension/ips--$(EXTVERSION).sql: $(SQL_PARTS) ips.control
	@{ echo "-- ips $(EXTVERSION): generated from extension/sql/*.sql by make; do not edit"; \
	   printf '%s\n' '\echo Use "CREATE EXTENSION ips" to load this file. \quit'; \
	   for f in $(SQL_PARTS); do echo; echo "-- ===== $$f"; cat $$f; done; } > $@

$(OBJS): extension/ips.h extension/ips_compat.h extension/ledger.h extension/autonomous.h

.PHONY: installcheck installcheck-regress
installcheck-regress: submake
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
installcheck:
	@PG_CONFIG=$(PG_CONFIG) scripts/installcheck.sh

# ipsctl, the command-line client (libpq + cJSON), built beside the extension
# and installed on the ordinary PATH (not in PostgreSQL's bindir), with its
# manual page ipsctl(1); NO_IPSCTL=1 builds the extension alone.  A package
# sets prefix_ipsctl=/usr.
prefix_ipsctl ?= /usr/local
bindir_ipsctl ?= $(prefix_ipsctl)/bin
mandir_ipsctl ?= $(prefix_ipsctl)/share/man
ifneq ($(NO_IPSCTL),1)
all: cli/ipsctl
cli/ipsctl: $(wildcard cli/*.c cli/*.h) cli/Makefile ips.control
	$(MAKE) -C cli PG_CONFIG=$(PG_CONFIG)
install: install-ipsctl
install-ipsctl: cli/ipsctl
	$(MKDIR_P) '$(DESTDIR)$(bindir_ipsctl)' '$(DESTDIR)$(mandir_ipsctl)/man1'
	$(INSTALL_PROGRAM) cli/ipsctl '$(DESTDIR)$(bindir_ipsctl)/ipsctl'
	$(INSTALL_DATA) cli/ipsctl.1 '$(DESTDIR)$(mandir_ipsctl)/man1/ipsctl.1'
uninstall: uninstall-ipsctl
uninstall-ipsctl:
	rm -f '$(DESTDIR)$(bindir_ipsctl)/ipsctl' '$(DESTDIR)$(mandir_ipsctl)/man1/ipsctl.1'
clean: clean-ipsctl
clean-ipsctl:
	$(MAKE) -C cli clean
endif

# The two commands of the README, and the benchmark.  Each installs what is
# missing (Debian packages), builds, starts a throw-away cluster as the
# postgres user, does its work, and stops and removes the cluster.
# Each installs only what it needs (scripts/ensure-deps.sh build|demo|test|bench).
.PHONY: demo test bench deps deps-build deps-demo deps-test deps-bench install-ipsctl uninstall-ipsctl clean-ipsctl
deps: deps-test
deps-build deps-demo deps-test deps-bench:
	@scripts/ensure-deps.sh $(patsubst deps-%,%,$@)
demo: deps-demo
	@scripts/demo.sh
test: deps-test
	@scripts/run-tests.sh
bench: deps-bench
	@bench/run.sh

# The suite on every supported major, each in a debootstrap chroot of the Debian
# release that ships it (bookworm 15, trixie 17, sid 18), and a region moved
# from 15 (ips 1.1) to the others: scripts/test-matrix.sh, docs/versions.md.
.PHONY: test-matrix deb
test-matrix:
	@scripts/test-matrix.sh

# Debian packages (debian/, pg_buildext): postgresql-NN-ips per supported major
# of this distribution, and ipsctl; into debs-out/, checked by lintian.
deb:
	@scripts/build-debs.sh

# The PGXN archive ips-X.Y.Z.zip of HEAD, META.json checked against ips.control.
.PHONY: dist
dist:
	@scripts/dist.sh
