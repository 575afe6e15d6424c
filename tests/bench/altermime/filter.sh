#!/bin/sh
# Postfix "simple content filter" (FILTER_README) around alterMIME, for
# tests/bench/bench_stack.py. Run by a pipe(8) service as user nobody, one recipient
# per delivery (altermime_destination_recipient_limit = 1):
#
#   filter.sh HERE PORT -f SENDER -- RECIPIENT
#
# HERE holds the disclaimers and spool/ (writable by nobody). The message is saved to
# a temp file, alterMIME rewrites it in place, and Postfix's C smtp-source sends it to
# the second smtpd on 127.0.0.1:PORT (no content_filter, no milter), as the workshop's
# harness does: sendmail cannot reach a private instance from user nobody, and a
# Python client's start-up (~20 ms per message here) would be measured instead of
# alterMIME. Exit 75 (EX_TEMPFAIL) makes Postfix keep the message and retry.
EX_TEMPFAIL=75
EX_USAGE=64
HERE=$1
PORT=$2
[ "$3" = "-f" ] && [ "$5" = "--" ] && [ $# -eq 6 ] || { echo "usage: filter.sh HERE PORT -f SENDER -- RECIPIENT"; exit $EX_USAGE; }
SENDER=$4
RECIPIENT=$6
cd "$HERE/spool" || { echo "$HERE/spool does not exist"; exit $EX_TEMPFAIL; }
trap 'rm -f in.$$' 0 1 2 3 15
cat >in.$$ || { echo "cannot save mail to file"; exit $EX_TEMPFAIL; }
altermime --input=in.$$ --disclaimer="$HERE/disclaimer.txt" \
    --disclaimer-html="$HERE/disclaimer.html" --htmltoo --force-for-bad-html >/dev/null \
    || { echo "altermime failed"; exit $EX_TEMPFAIL; }
/usr/sbin/smtp-source -m 1 -s 1 -M localhost -F in.$$ \
    -f "${SENDER:-MAILER-DAEMON@localhost}" -t "$RECIPIENT" "127.0.0.1:$PORT" \
    || { echo "reinjection failed"; exit $EX_TEMPFAIL; }
exit 0
