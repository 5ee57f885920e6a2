"""teachraft.net"""
