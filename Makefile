# connector: PGXS build, test and demo entry points.
#
#   make test   install what is missing, build, install, run every suite
#   make demo   run the example application end to end on a throwaway cluster

EXTENSION = connector
EXTVERSION = 0.1
MODULE_big = connector
OBJS = \
	src/connector.o \
	src/origin.o \
	src/owner.o \
	src/capture.o \
	src/capture_map.o \
	src/capture_names.o \
	src/capture_outbox.o \
	src/capture_render.o \
	src/outbox_read.o \
	src/dispatcher.o \
	src/http.o \
	src/sign.o \
	src/jose.o \
	src/set_render.o \
	src/ssf_stream.o \
	src/webhook_json.o \
	src/reconcile.o \
	src/logfilter.o

# The install script is assembled from one file per concern.
SQL_PARTS = $(sort $(wildcard sql/parts/*.sql))
DATA_built = sql/connector--$(EXTVERSION).sql

PG_CONFIG ?= pg_config
SHLIB_LINK += -lcurl -ljansson -lcrypto
PG_CFLAGS += -Werror -Wall -Wmissing-prototypes

EXTRA_CLEAN = test/results gateway/connector-gateway gateway/connector-gateway-asan \
	gateway/test_filter

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
endif

sql/connector--$(EXTVERSION).sql: $(SQL_PARTS)
	cat $(SQL_PARTS) > $@

# connector-gateway, the SCIM service provider (gateway/), built and
# installed next to the extension into pg_config's bindir.
all: gateway/connector-gateway

gateway/connector-gateway: $(wildcard gateway/*.c gateway/*.h)
	$(MAKE) -C gateway PG_CONFIG=$(PG_CONFIG) connector-gateway

install: install-gateway

install-gateway: gateway/connector-gateway
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) gateway/connector-gateway '$(DESTDIR)$(bindir)/connector-gateway'

.PHONY: install-gateway

.PHONY: deps test demo bench

# Debian packages the build and the suites need; installed only when missing.
deps:
	@test/install-deps.sh

test: deps
	$(MAKE) all
	$(MAKE) install
	test/run-tests.sh

demo: deps
	$(MAKE) all
	$(MAKE) install
	docs/examples/demo.sh

bench: deps
	$(MAKE) all
	$(MAKE) install
	test/bench/run.sh
