-- The webhook signer against the published Standard Webhooks test vector.
BEGIN;
CREATE EXTENSION connector;
SELECT plan(3);

SELECT is(connector._sign('msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}',
						  decode('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64')),
		  'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
		  'the Standard Webhooks test vector');
SELECT isnt(connector._sign('msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232315}',
							decode('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64')),
			'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
			'another body, another signature');
SELECT isnt(connector._sign('msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265331, '{"test": 2432232314}',
							decode('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64')),
			'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
			'another timestamp, another signature');

SELECT * FROM finish();
ROLLBACK;
