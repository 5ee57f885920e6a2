"""teachraft.viz"""
