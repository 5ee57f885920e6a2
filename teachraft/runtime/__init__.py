"""teachraft.runtime"""
