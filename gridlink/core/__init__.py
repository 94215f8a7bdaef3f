"""The gateway's pure core: budget planning and fleet allocation over plain frozen data.

Nothing here touches the database, the web framework, the clock or the network; the service
layer loads inputs, calls these functions and stores what they return.
"""
