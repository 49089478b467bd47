"""
Private. The process edge: the ``twistd oct-turret`` options (validation
of the command line, config and script before anything starts), the service
tree, exit statuses, turret packages (``--tar``) and standalone runs.

May import: every other layer. Nothing imports it but the twistd plugin.
"""
