# Stands in for an oct-turrets that is installed but cannot be imported
# (as on Python 3.12+, where its `import imp` fails).
raise ImportError("No module named 'imp' (simulated)")
