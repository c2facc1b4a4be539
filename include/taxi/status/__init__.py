"""Above the targets: what every target holds, as the Taxi months page and make report."""
