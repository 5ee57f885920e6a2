"""teachraft.core"""
