"""Alert rules on the fleet's state, their lifecycle, and notifications (webhook)."""
