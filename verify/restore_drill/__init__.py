"""`verify restore-drill`: restore the newest backups on a scratch server, compare with live, measure RPO and RTO."""
