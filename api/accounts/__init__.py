"""Accounts: the own account page, account administration (issue, disable, reset) and the audit
trail each user may read."""
