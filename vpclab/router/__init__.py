"""The virtual router and the mapping service's logic: the OpenFlow pipeline (pure
decisions), the mapping table, the service's inventory, router (re)synchronisation, the
per-router cache bound, the VPC router's view of a topology and the service's event log.
"""
