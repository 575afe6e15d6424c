#!/bin/sh
# Postfix "simple content filter" (FILTER_README) around alterMIME, for
# tests/bench/bench_altermime.py. Run by a pipe(8) service as user nobody:
#
#   filter.sh HERE PORT -f SENDER -- RECIPIENT...
#
# HERE holds the disclaimers, reinject.py and spool/ (writable by nobody). The
# message is saved to a temp file, alterMIME rewrites it in place, and reinject.py
# sends it over SMTP to the second smtpd on 127.0.0.1:PORT (no content_filter, no
# milter). Not sendmail: it cannot reach a private instance from user nobody.
# Exit 75 (EX_TEMPFAIL) makes Postfix keep the message and retry.
EX_TEMPFAIL=75
HERE=$1
PORT=$2
shift 2
cd "$HERE/spool" || { echo "$HERE/spool does not exist"; exit $EX_TEMPFAIL; }
trap 'rm -f in.$$' 0 1 2 3 15
cat >in.$$ || { echo "cannot save mail to file"; exit $EX_TEMPFAIL; }
altermime --input=in.$$ --disclaimer="$HERE/disclaimer.txt" \
    --disclaimer-html="$HERE/disclaimer.html" --htmltoo --force-for-bad-html >/dev/null \
    || { echo "altermime failed"; exit $EX_TEMPFAIL; }
/usr/bin/python3 -S "$HERE/reinject.py" "$PORT" in.$$ "$@"
exit $?
