#!/usr/bin/env bash
# Benchmarks postamt side by side with its peers on this machine, in one run:
#   SMTP ingest   postamt                  vs Postfix -> Dovecot LMTP
#   IMAP, POP3    postamt                  vs Dovecot
#   idle memory   postamt                  vs Dovecot
#   start-up      postamt                  vs Dovecot (IMAP) and Postfix (SMTP)
# Installs Dovecot and Postfix from Debian if missing (needs root), configures them in
# $BENCH_DIR on loopback ports of their own (not the default ones: nothing else on this
# machine is touched, apart from one line in /etc/postfix/main.cf that allows Postfix's
# configuration directory there), builds postamt and postamt-bench in release mode, and
# prints a table: postamt's figure, the peer's figure, the ratio. All figures, one JSON line
# per run, are kept in $BENCH_DIR/results.jsonl.
#
# Usage: bench/run.sh            the full run (about 20-30 minutes on 2 cores)
#        QUICK=1 bench/run.sh    small sizes, to try the setup in a minute or two
# Sizes can be changed through the variables below (e.g. SMTP_MESSAGES=20000 bench/run.sh),
# and PHASES="memory" (or any of: memory read smtp) runs only some of the workloads.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_DIR=${BENCH_DIR:-/var/tmp/postamt-bench}

if [ "${QUICK:-0}" = 1 ]; then
  : "${SMTP_MESSAGES:=500}" "${GROW_ROUNDS:=2}" "${READ_ACCOUNTS:=4}" "${READ_MESSAGES:=50}" "${MIXED_OPS:=50}"
  : "${IDLE_COUNTS:=200}" "${IDLE_TLS_COUNTS:=200}" "${IDLE_MAX:=}" "${IDLE_ACCOUNTS:=10}"
fi
SMTP_MESSAGES=${SMTP_MESSAGES:-10000}    # per SMTP case
SMTP_SESSIONS=${SMTP_SESSIONS:-20}
GROW_ROUNDS=${GROW_ROUNDS:-5}            # SMTP ingest rounds into the same, growing mailboxes
GROW_ACCOUNTS=${GROW_ACCOUNTS:-2}        # ... of this many accounts (SMTP_MESSAGES per round)
READ_ACCOUNTS=${READ_ACCOUNTS:-10}       # IMAP-read and POP3 clients, one account each
READ_MESSAGES=${READ_MESSAGES:-500}      # messages in each of their INBOXes (mixed sizes)
MIXED_CLIENTS=${MIXED_CLIENTS:-10}
MIXED_OPS=${MIXED_OPS:-300}              # per client
MIXED_IDLE=${MIXED_IDLE:-5}
IDLE_COUNTS=${IDLE_COUNTS:-"1000 10000"}         # idle IMAP connections, plain
IDLE_TLS_COUNTS=${IDLE_TLS_COUNTS:-"1000 10000"} # and with TLS
IDLE_MAX=${IDLE_MAX-19500}              # postamt alone, near the open-files limit
IDLE_ACCOUNTS=${IDLE_ACCOUNTS:-100}      # the idle connections log in as these in turn
IDLE_MESSAGES=${IDLE_MESSAGES:-20}       # each with this many messages in its INBOX
PHASES=${PHASES:-"memory read smtp"}
PASSWORD=benchmark
DOMAIN=bench.test

# Ports: postamt 12xxx, Dovecot 22xxx, Postfix 22525.
PA_SMTP=127.0.0.1:12525 PA_IMAP=127.0.0.1:12143 PA_IMAPS=127.0.0.1:12993 PA_POP3=127.0.0.1:12110
DC_IMAP=127.0.0.1:22143 DC_IMAPS=127.0.0.1:22993 DC_POP3=127.0.0.1:22110 DC_LMTP_PORT=22024
PF_SMTP=127.0.0.1:22525
# postamt checks SPF/DKIM/DMARC of incoming mail: a stub on loopback answers its DNS queries at
# once (NXDOMAIN), as a local caching resolver would, and nothing is sent off the machine.
DNS_STUB=127.0.0.1:25353

POSTAMT=$ROOT/target/release/postamt
BENCH=$ROOT/target/release/postamt-bench
RESULTS=$BENCH_DIR/results.jsonl
PF_CONF=$BENCH_DIR/postfix/etc
DC_CONF=$BENCH_DIR/dovecot/dovecot.conf

log() { printf '\n=== %s\n' "$*" >&2; }

# ---- installation and build ----

install_peers() {
  local need=()
  command -v dovecot >/dev/null || need+=(dovecot-imapd dovecot-pop3d dovecot-lmtpd)
  [ -x /usr/lib/dovecot/lmtp ] || need+=(dovecot-lmtpd)
  [ -x /usr/lib/dovecot/pop3 ] || need+=(dovecot-pop3d)
  command -v postfix >/dev/null || [ -x /usr/sbin/postfix ] || need+=(postfix)
  command -v openssl >/dev/null || need+=(openssl)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

build() {
  log "building postamt and postamt-bench (release)"
  cargo build --release --locked -p postamt -p postamt-bench >&2
}

# ---- stopping (also at exit) ----

stop_all() {
  if [ -f "$BENCH_DIR/dns.pid" ]; then
    kill "$(cat "$BENCH_DIR/dns.pid")" 2>/dev/null || true
    rm -f "$BENCH_DIR/dns.pid"
  fi
  if [ -f "$BENCH_DIR/postamt.pid" ]; then
    kill "$(cat "$BENCH_DIR/postamt.pid")" 2>/dev/null || true
    rm -f "$BENCH_DIR/postamt.pid"
  fi
  if [ -f "$BENCH_DIR/dovecot.pid" ]; then
    kill "$(cat "$BENCH_DIR/dovecot.pid")" 2>/dev/null || true
    rm -f "$BENCH_DIR/dovecot.pid"
  fi
  if [ -f "$PF_CONF/main.cf" ]; then
    /usr/sbin/postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true
  fi
  sleep 1
}

# ---- configuration ----

setup_common() {
  stop_all
  rm -rf "$BENCH_DIR"
  mkdir -p "$BENCH_DIR/tls"
  # One certificate for both servers (ECDSA P-256, as postamt generates by default).
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj /CN=localhost -keyout "$BENCH_DIR/tls/key.pem" -out "$BENCH_DIR/tls/cert.pem" 2>/dev/null
  chmod 644 "$BENCH_DIR/tls/key.pem"
  # Many loopback connections and processes.
  sysctl -qw fs.inotify.max_user_instances=20000 2>/dev/null || true
  sysctl -qw net.core.somaxconn=8192 2>/dev/null || true
  ulimit -n "$(ulimit -Hn)"
}

# All accounts, on every server: bench<n> (IMAP read, POP3), mixed1 (IMAP mixed),
# in<n> (SMTP ingest), grow<n> (ingest into growing mailboxes), idle<n> (idle connections).
account_list() {
  local n
  for n in $(seq 1 "$READ_ACCOUNTS"); do echo "bench$n@$DOMAIN"; done
  echo "mixed1@$DOMAIN"
  for n in $(seq 1 10); do echo "in$n@$DOMAIN"; done
  for n in $(seq 1 "$GROW_ACCOUNTS"); do echo "grow$n@$DOMAIN"; done
  for n in $(seq 1 "$IDLE_ACCOUNTS"); do echo "idle$n@$DOMAIN"; done
}

setup_postamt() {
  log "configuring postamt in $BENCH_DIR/postamt"
  mkdir -p "$BENCH_DIR/postamt"
  cat >"$BENCH_DIR/postamt/postamt.toml" <<EOF
hostname = "bench-postamt.localdomain"
data_dir = "$BENCH_DIR/postamt/data"
max_message_size = "50M"
[listen]
smtp = ["$PA_SMTP"]
imap = ["$PA_IMAP"]
imaps = ["$PA_IMAPS"]
pop3 = ["$PA_POP3"]
[tls]
cert = "$BENCH_DIR/tls/cert.pem"
key = "$BENCH_DIR/tls/key.pem"
[auth]
allow_plaintext = true
[limits]
connections = 200000
connections_per_ip = 200000
[dns]
resolver = "$DNS_STUB"
EOF
  local pa=("$POSTAMT" --config "$BENCH_DIR/postamt/postamt.toml")
  "${pa[@]}" domain add "$DOMAIN" >/dev/null
  account_list | while read -r address; do
    echo "$PASSWORD" | "${pa[@]}" account add "$address" --password-stdin >/dev/null
  done
}

setup_dovecot() {
  log "configuring Dovecot in $BENCH_DIR/dovecot"
  id benchmail >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin benchmail
  local uid gid
  uid=$(id -u benchmail) gid=$(id -g benchmail)
  mkdir -p "$BENCH_DIR/dovecot/run" "$BENCH_DIR/dovecot/state" "$BENCH_DIR/dovecot/mail"
  chown benchmail:benchmail "$BENCH_DIR/dovecot/mail"
  account_list | sed "s/\$/:{PLAIN}$PASSWORD/" >"$BENCH_DIR/dovecot/passwd"
  cat >"$DC_CONF" <<EOF
# Written by bench/run.sh. Dovecot's defaults, except: Maildir in $BENCH_DIR, accounts from a
# passwd-file, plaintext logins allowed (loopback), LMTP on TCP for Postfix, limits raised for
# 10,000 connections, and the login processes in "high-performance mode" (service_count = 0),
# which Dovecot's documentation recommends for many connections.
instance_name = postamt-bench
base_dir = $BENCH_DIR/dovecot/run
state_dir = $BENCH_DIR/dovecot/state
protocols = imap pop3 lmtp
listen = 127.0.0.1
log_path = $BENCH_DIR/dovecot/dovecot.log
ssl = yes
ssl_cert = <$BENCH_DIR/tls/cert.pem
ssl_key = <$BENCH_DIR/tls/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = $uid
first_valid_gid = $gid
default_client_limit = 30000
default_vsz_limit = 1G
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $BENCH_DIR/dovecot/passwd
}
userdb {
  driver = static
  args = uid=$uid gid=$gid home=$BENCH_DIR/dovecot/mail/%d/%n allow_all_users=yes
}
protocol imap {
  mail_max_userip_connections = 100000
}
protocol pop3 {
  mail_max_userip_connections = 100000
}
namespace inbox {
  inbox = yes
  mailbox Archive {
    auto = create
    special_use = \Archive
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${DC_IMAP##*:}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${DC_IMAPS##*:}
    ssl = yes
  }
  service_count = 0
  process_min_avail = 2
  client_limit = 5000
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = ${DC_POP3##*:}
  }
  inet_listener pop3s {
    port = 0
  }
  service_count = 0
  process_min_avail = 2
  client_limit = 5000
}
service imap {
  process_limit = 25000
}
service pop3 {
  process_limit = 1000
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $DC_LMTP_PORT
  }
}
service anvil {
  client_limit = 60000
}
service auth {
  client_limit = 60000
}
EOF
}

setup_postfix() {
  log "configuring Postfix in $BENCH_DIR/postfix"
  mkdir -p "$PF_CONF" "$BENCH_DIR/postfix/spool" "$BENCH_DIR/postfix/data"
  chown postfix "$BENCH_DIR/postfix/data"
  # postfix -c DIR only accepts a directory that the default main.cf lists.
  touch /etc/postfix/main.cf
  local allowed
  allowed=$(postconf -c /etc/postfix -h alternate_config_directories 2>/dev/null || true)
  case " $allowed " in
    *" $PF_CONF "*) ;;
    *) postconf -c /etc/postfix -e "alternate_config_directories = ${allowed:+$allowed }$PF_CONF" ;;
  esac
  sed -E "s|^smtp +inet .*|${PF_SMTP} inet n - n - - smtpd|" /etc/postfix/master.cf >"$PF_CONF/master.cf"
  account_list | sed 's/$/ OK/' >"$PF_CONF/vmailbox"
  cat >"$PF_CONF/main.cf" <<EOF
# Written by bench/run.sh: Postfix's defaults, except what makes it accept mail for
# $DOMAIN on $PF_SMTP and hand it to Dovecot's LMTP.
compatibility_level = 3.6
queue_directory = $BENCH_DIR/postfix/spool
data_directory = $BENCH_DIR/postfix/data
mail_owner = postfix
setgid_group = postdrop
myhostname = bench-postfix.localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_maps = texthash:$PF_CONF/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:$DC_LMTP_PORT
message_size_limit = 52428800
smtpd_peername_lookup = no
maillog_file = $BENCH_DIR/postfix/maillog
maillog_file_prefixes = /var, /tmp, /dev/stdout, $BENCH_DIR
EOF
  postconf -c "$PF_CONF" -F '*/*/chroot = n'
  /usr/sbin/postfix -c "$PF_CONF" check >&2
}

# ---- running ----

bench() {
  "$BENCH" --password "$PASSWORD" --domain "$DOMAIN" "$@" | tee -a "$RESULTS"
}

start_postamt_dovecot() {
  local case=$1
  bench --label postamt --case "$case" startup --connect "$PA_IMAP" --pidfile "$BENCH_DIR/postamt.pid" \
    --log "$BENCH_DIR/postamt/postamt.log" -- "$POSTAMT" serve --config "$BENCH_DIR/postamt/postamt.toml"
  bench --label dovecot --case "$case" startup --connect "$DC_IMAP" --pidfile "$BENCH_DIR/dovecot.pid" \
    --log "$BENCH_DIR/dovecot/stdout.log" -- /usr/sbin/dovecot -F -c "$DC_CONF"
}

# Stops postamt and Dovecot and starts them again: every memory figure is taken on a fresh
# process (an allocator keeps what a previous case freed, which would hide the next one's
# cost). Doubles as the start-up time with full mailboxes.
restart_postamt_dovecot() {
  local pidfile pid
  for pidfile in "$BENCH_DIR/postamt.pid" "$BENCH_DIR/dovecot.pid"; do
    pid=$(cat "$pidfile")
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    rm -f "$pidfile"
  done
  start_postamt_dovecot "start-up, mailboxes full"
}

start_servers() {
  "$BENCH" dns-stub --listen "$DNS_STUB" 2>>"$BENCH_DIR/dns.log" &
  echo $! >"$BENCH_DIR/dns.pid"
  log "starting the servers (start-up time to the first greeting)"
  start_postamt_dovecot "start-up"
  # start-fg keeps Postfix's master process in the foreground, so it is timed the same way.
  bench --label postfix --case "start-up (SMTP)" startup --connect "$PF_SMTP" \
    --log "$BENCH_DIR/postfix/stdout.log" -- /usr/sbin/postfix -c "$PF_CONF" start-fg
}

populate() {
  log "filling mailboxes: $READ_ACCOUNTS x $READ_MESSAGES, mixed1 x $READ_MESSAGES, $IDLE_ACCOUNTS x $IDLE_MESSAGES"
  local label smtp imap
  for label in postamt dovecot; do
    if [ $label = postamt ]; then smtp=$PA_SMTP imap=$PA_IMAP; else smtp=$PF_SMTP imap=$DC_IMAP; fi
    bench --label $label --case "populate" --prefix bench --accounts "$READ_ACCOUNTS" \
      populate --smtp "$smtp" --imap "$imap" --messages "$READ_MESSAGES"
    bench --label $label --case "populate mixed" --prefix mixed --accounts 1 --seed 2 \
      populate --smtp "$smtp" --imap "$imap" --messages "$READ_MESSAGES"
    bench --label $label --case "populate idle" --prefix idle --accounts "$IDLE_ACCOUNTS" --seed 3 \
      populate --smtp "$smtp" --imap "$imap" --messages "$IDLE_MESSAGES"
  done
}

# Runs one workload against postamt and then the peer: run_pair CASE ARGS... where ARGS may
# contain @SMTP@, @IMAP@, @IMAPS@, @POP3@, @PID@ for the server's own values.
run_pair() {
  local case=$1 label
  shift
  for label in postamt dovecot; do
    local args=() a
    for a in "$@"; do
      if [ $label = postamt ]; then
        a=${a//@SMTP@/$PA_SMTP} a=${a//@IMAP@/$PA_IMAP} a=${a//@IMAPS@/$PA_IMAPS} a=${a//@POP3@/$PA_POP3}
        a=${a//@PID@/$BENCH_DIR/postamt.pid}
      else
        a=${a//@SMTP@/$PF_SMTP} a=${a//@IMAP@/$DC_IMAP} a=${a//@IMAPS@/$DC_IMAPS} a=${a//@POP3@/$DC_POP3}
        a=${a//@PID@/$BENCH_DIR/dovecot.pid}
      fi
      args+=("$a")
    done
    local peer=dovecot
    case "$case" in smtp*) [ $label = dovecot ] && peer=postfix+dovecot ;; esac
    [ $label = postamt ] && peer=postamt
    log "$case: $peer"
    bench --label "$peer" --case "$case" "${args[@]}"
  done
}

workloads() {
  local k
  case " $PHASES " in *" memory "*)
    # As many idle connections as one process may hold here (the hard limit on open files,
    # less the server's own), postamt only: the 10,000 case compares, this one shows the
    # figure holds near the limit. Empty IDLE_MAX skips it.
    if [ -n "$IDLE_MAX" ]; then
      restart_postamt_dovecot
      log "idle IMAP x$IDLE_MAX: postamt"
      bench --label postamt --case "idle IMAP x$IDLE_MAX" --prefix idle --accounts "$IDLE_ACCOUNTS" \
        memory --imap "$PA_IMAP" --connections "$IDLE_MAX" --pidfile "$BENCH_DIR/postamt.pid"
    fi
    for k in $IDLE_COUNTS; do
      restart_postamt_dovecot
      run_pair "idle IMAP x$k" --prefix idle --accounts "$IDLE_ACCOUNTS" \
        memory --imap @IMAP@ --connections "$k" --pidfile @PID@
    done
    for k in $IDLE_TLS_COUNTS; do
      restart_postamt_dovecot
      run_pair "idle IMAP+TLS x$k" --tls --prefix idle --accounts "$IDLE_ACCOUNTS" \
        memory --imap @IMAPS@ --connections "$k" --pidfile @PID@
    done
    ;;
  esac
  case " $PHASES " in *" read "*) reads ;; esac
  case " $PHASES " in *" smtp "*) smtps ;; esac
}

# Fresh processes; the first IMAP read of newly delivered mail builds each server's cache
# (postamt: ENVELOPE/BODYSTRUCTURE per body; Dovecot: dovecot.index.cache), the second reads
# from it.
reads() {
  restart_postamt_dovecot
  run_pair "imap read x$READ_ACCOUNTS, first" --prefix bench --accounts "$READ_ACCOUNTS" \
    imap-read --imap @IMAP@ --concurrency "$READ_ACCOUNTS"
  run_pair "imap read x$READ_ACCOUNTS, again" --prefix bench --accounts "$READ_ACCOUNTS" \
    imap-read --imap @IMAP@ --concurrency "$READ_ACCOUNTS"
  run_pair "pop3 x$READ_ACCOUNTS" --prefix bench --accounts "$READ_ACCOUNTS" \
    pop3 --pop3 @POP3@ --concurrency "$READ_ACCOUNTS"
  run_pair "imap mixed x$MIXED_CLIENTS" --prefix mixed --accounts 1 \
    imap-mixed --imap @IMAP@ --concurrency "$MIXED_CLIENTS" --ops "$MIXED_OPS" --idle "$MIXED_IDLE"
}

smtps() {
  run_pair "smtp 10KB x$SMTP_SESSIONS" --prefix in --accounts 10 \
    smtp --smtp @SMTP@ --messages "$SMTP_MESSAGES" --concurrency "$SMTP_SESSIONS" --size 10k --wait-imap @IMAP@
  run_pair "smtp mixed x$SMTP_SESSIONS" --prefix in --accounts 10 --seed 4 \
    smtp --smtp @SMTP@ --messages "$SMTP_MESSAGES" --concurrency "$SMTP_SESSIONS" --size mixed --wait-imap @IMAP@
  # Does the delivery rate hold as mailboxes grow? The same accounts, round after round;
  # before round r each of them holds (r - 1) * SMTP_MESSAGES / GROW_ACCOUNTS messages.
  local r
  for r in $(seq 1 "$GROW_ROUNDS"); do
    run_pair "smtp 10KB x$SMTP_SESSIONS, growing, round $r" --prefix grow --accounts "$GROW_ACCOUNTS" \
      --seed $((10 + r)) smtp --smtp @SMTP@ --messages "$SMTP_MESSAGES" --concurrency "$SMTP_SESSIONS" \
      --size 10k --wait-imap @IMAP@
  done
}

main() {
  [ "$(id -u)" = 0 ] || { echo "run.sh needs root (packages, Dovecot, Postfix)" >&2; exit 1; }
  install_peers
  build
  setup_common
  trap stop_all EXIT
  setup_postamt
  setup_dovecot
  setup_postfix
  : >"$RESULTS"
  start_servers
  populate
  workloads
  log "results ($RESULTS)"
  {
    echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "ratio: how many times better postamt did (above 1: better; throughput higher, latency/memory/time lower)"
    echo
    "$BENCH" table "$RESULTS"
  } | tee "$BENCH_DIR/table.md"
}

main "$@"
