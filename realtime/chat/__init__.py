"""
The chat site, one user of the gateway: its four topic families (`room`,
`user`, `broadcast`, `dashboard`), its data, services and selectors, signals
that keep sockets in step with the database, pages, REST API and admin.
"""
