class Something:
    pass
