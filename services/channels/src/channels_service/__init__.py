"""The channels service: a creator's channel, its stream key, followers and moderation."""
