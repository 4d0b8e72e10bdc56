"""OpenFlow applications written against the Ryu app model, run on os-ken."""
