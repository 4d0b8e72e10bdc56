"""A running lab: Mininet nodes and links, one Open vSwitch per host, the mapping
service process, the runner and its supervisor, live changes, lab state and its proven
removal, node identities, DHCP clients, and what root writes for the user behind sudo.
"""
