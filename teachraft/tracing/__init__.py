"""teachraft.tracing"""
