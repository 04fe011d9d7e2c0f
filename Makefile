# Build and install pkglayer with its man pages, shell completions, systemd units and configuration.
#
#   make                                  # release build, man pages and completions (target/assets)
#   sudo make install PREFIX=/usr         # or DESTDIR=/tmp/root for packaging
#   make dist                             # target/pkglayer-VERSION.tar.gz, the source of the RPM
#   make rpm                              # target/rpmbuild/RPMS/*/pkglayer-*.rpm (packaging/pkglayer.spec)
#
# `install` installs what `make` built; it builds nothing itself, so it can run as root after an
# unprivileged build (and BIN=/ASSETS= can name files built elsewhere).

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
# pkglayer reads /etc/pkglayer/pkglayer.conf whatever the prefix.
SYSCONFDIR ?= /etc
DESTDIR ?=

CARGO ?= cargo
CARGO_FLAGS ?= --locked
PROFILE ?= release
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
BIN ?= $(TARGET_DIR)/$(if $(filter dev test,$(PROFILE)),debug,$(PROFILE))/pkglayer
ASSETS ?= $(TARGET_DIR)/assets
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

INSTALL ?= install

.PHONY: all build assets install uninstall dist rpm

all: build assets

build:
	$(CARGO) build $(CARGO_FLAGS) --profile $(PROFILE) --target-dir $(TARGET_DIR) -p pkglayer

# Man pages and completions from the command-line definitions (crates/pkglayer-assets).
assets:
	$(CARGO) run $(CARGO_FLAGS) --profile $(PROFILE) --target-dir $(TARGET_DIR) -q -p pkglayer-assets -- $(ASSETS) >/dev/null

install:
	@test -x $(BIN) || { echo "error: $(BIN) is not built; run make first" >&2; exit 1; }
	@test -d $(ASSETS)/man || { echo "error: no man pages in $(ASSETS); run make first" >&2; exit 1; }
	$(INSTALL) -Dm755 $(BIN) $(DESTDIR)$(BINDIR)/pkglayer
	$(INSTALL) -d $(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m644 $(ASSETS)/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -Dm644 $(ASSETS)/completions/pkglayer.bash \
		$(DESTDIR)$(DATADIR)/bash-completion/completions/pkglayer
	$(INSTALL) -Dm644 $(ASSETS)/completions/_pkglayer $(DESTDIR)$(DATADIR)/zsh/site-functions/_pkglayer
	$(INSTALL) -Dm644 $(ASSETS)/completions/pkglayer.fish \
		$(DESTDIR)$(DATADIR)/fish/vendor_completions.d/pkglayer.fish
	$(INSTALL) -d $(DESTDIR)$(UNITDIR)
	sed 's|@bindir@|$(BINDIR)|g' packaging/systemd/pkglayer-automatic.service.in \
		> $(DESTDIR)$(UNITDIR)/pkglayer-automatic.service
	chmod 644 $(DESTDIR)$(UNITDIR)/pkglayer-automatic.service
	$(INSTALL) -m644 packaging/systemd/pkglayer-automatic.timer $(DESTDIR)$(UNITDIR)/
	@# An edited configuration stays.
	test -e $(DESTDIR)$(SYSCONFDIR)/pkglayer/pkglayer.conf || \
		$(INSTALL) -Dm644 packaging/pkglayer.conf $(DESTDIR)$(SYSCONFDIR)/pkglayer/pkglayer.conf

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pkglayer $(DESTDIR)$(MANDIR)/man1/pkglayer.1 \
		$(DESTDIR)$(MANDIR)/man1/pkglayer-*.1 \
		$(DESTDIR)$(DATADIR)/bash-completion/completions/pkglayer \
		$(DESTDIR)$(DATADIR)/zsh/site-functions/_pkglayer \
		$(DESTDIR)$(DATADIR)/fish/vendor_completions.d/pkglayer.fish \
		$(DESTDIR)$(UNITDIR)/pkglayer-automatic.service $(DESTDIR)$(UNITDIR)/pkglayer-automatic.timer

# The committed tree plus uncommitted changes to tracked files.
dist:
	mkdir -p $(TARGET_DIR)
	tree=$$(git stash create); git archive --format=tar.gz --prefix=pkglayer-$(VERSION)/ \
		-o $(TARGET_DIR)/pkglayer-$(VERSION).tar.gz $${tree:-HEAD}

rpm: dist
	scripts/build-rpm $(TARGET_DIR)/pkglayer-$(VERSION).tar.gz
