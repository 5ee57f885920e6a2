"""teachraft.check"""
