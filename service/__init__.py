"""The service layer (应用服务): what happens to a message, from its bytes to its events.

`inbound` reads what arrived, `authorisation` says who may send and read it, `pipeline` decides each
message in a unit of work (`unit_of_work`), and `ledger` is the event-sourced application that
stores the outcome and answers for the store. Below it sit the adapters (`infra`), above it the
read models (`projections`) and the entrypoints.
"""
