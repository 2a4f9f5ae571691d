import { TimelineLogTypes } from '../../../src/provider/shapes.js';

/** Static reference data the world draws from: fulfilment centres, carriers, fees, timeline wording. */

export const FULFILLMENT_CENTERS = [
  { id: 10, name: 'Cicero (IL)' },
  { id: 11, name: 'Moreno Valley (CA)' },
  { id: 12, name: 'Bethlehem (PA)' },
  { id: 13, name: 'Dallas (TX)' },
] as const;

export const CARRIERS = [
  { name: 'USPS', services: ['Priority', 'ParcelSelect'], url: 'https://tools.usps.com/go/TrackConfirm?tLabels=' },
  { name: 'UPS', services: ['Ground', 'SurePost', '2nd Day Air'], url: 'https://www.ups.com/track?tracknum=' },
  { name: 'FedEx', services: ['Home Delivery', 'SmartPost', '2Day'], url: 'https://www.fedex.com/fedextrack/?trknbr=' },
  { name: 'DHL', services: ['eCommerce Expedited'], url: 'https://www.dhl.com/en/home/tracking.html?tracking-id=' },
] as const;

/** One fee per transaction; a shipment's first fee is always Shipping, the rest are drawn without repeats. */
export const SHIPMENT_FEES = ['Shipping', 'Per Pick Fee', 'Address Correction', 'Signature Fee'] as const;

export const STORAGE_LOCATION_TYPES = ['Bin', 'Shelf', 'Pallet'] as const;

export interface StatusDetail {
  name: string;
  description: string;
}

export const HOLD_REASONS: readonly StatusDetail[] = [
  { name: 'AddressValidationHold', description: 'The recipient address could not be validated' },
  { name: 'ManualHold', description: 'Put on hold by the merchant' },
];
export const EXCEPTION_REASONS: readonly StatusDetail[] = [
  { name: 'OutOfStock', description: 'One or more items are out of stock' },
  { name: 'MissingCustomsInfo', description: 'Customs information is missing' },
];

export const TIMELINE_WORDING: Record<number, { name: string; text: string }> = {
  [TimelineLogTypes.created]: { name: 'OrderPlacedStoreIntegration', text: 'Order placed via store integration' },
  [TimelineLogTypes.picked]: { name: 'Picked', text: 'Order picked' },
  [TimelineLogTypes.packed]: { name: 'Packed', text: 'Order packed' },
  [TimelineLogTypes.labeled]: { name: 'Labeled', text: 'Shipping label printed' },
  [TimelineLogTypes.labelValidated]: { name: 'LabelValidated', text: 'Label validated at the dock' },
  [TimelineLogTypes.inTransit]: { name: 'InTransit', text: 'In transit with the carrier' },
  [TimelineLogTypes.outForDelivery]: { name: 'OutForDelivery', text: 'Out for delivery' },
  [TimelineLogTypes.delivered]: { name: 'Delivered', text: 'Delivered' },
  [TimelineLogTypes.deliveryAttemptFailed]: {
    name: 'DeliveryAttemptFailed',
    text: 'Delivery attempt failed',
  },
};

export const FIRST_NAMES = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Ken', 'Radia', 'Donald'] as const;
export const LAST_NAMES = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Thompson', 'Knuth'] as const;
export const CITIES = [
  { city: 'Chicago', state: 'IL', zip_code: '60601' },
  { city: 'Austin', state: 'TX', zip_code: '73301' },
  { city: 'Portland', state: 'OR', zip_code: '97201' },
  { city: 'Brooklyn', state: 'NY', zip_code: '11201' },
] as const;
