/**
 * Thin on purpose: OfferTriggerHandler picks the offers to publish and enqueues the callout.
 */
trigger OfferTrigger on Offer__c(after insert, after update) {
    if (Trigger.isInsert) {
        OfferTriggerHandler.afterInsert(Trigger.new);
    } else {
        OfferTriggerHandler.afterUpdate(Trigger.new, Trigger.oldMap);
    }
}
