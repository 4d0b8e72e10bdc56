"""The topology model and its checks: hosts, VPCs (subnets, route tables), VMs, names,
and the fabric's plan of names and numbers. Pure: nothing here touches the machine.
"""
